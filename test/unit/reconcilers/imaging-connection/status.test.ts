import { expect } from "chai";
import type { WorkloadStatus } from "../../../../src/api/types";
import type { ConditionInput } from "../../../../src/kube/conditions";
import { DATABASE_SETUP_GRACE_MS, settingUpQuietly, summarize } from "../../../../src/reconcilers/imaging-connection/status";
import { workloadsCondition } from "../../../../src/reconcilers/imaging-connection/workloads";
import type { ImagingConnectionObject, SecureDatabaseObject } from "../../../../src/reconcilers/context";

const patched = (name: string, kind = "Deployment"): { status: WorkloadStatus } => ({
  status: { kind, name, state: "Patched", mountPath: `/etc/cast-imaging/mtls/${name}`, message: "mounts it" },
});

describe("workloadsCondition", () => {
  it("no workloads: True, NoWorkloads", () => {
    expect(workloadsCondition([])).to.deep.equal({
      type: "WorkloadsPatched",
      status: "True",
      reason: "NoWorkloads",
      message: "spec.workloads is empty: mount the client Secret yourself (status.declaration gives the file names)",
    });
  });

  it("all Patched: True, naming them", () => {
    expect(workloadsCondition([patched("console")])).to.deep.equal({
      type: "WorkloadsPatched",
      status: "True",
      reason: "Patched",
      message: "Deployment console mounts the client Secret and the CAST .ini",
    });
    expect(workloadsCondition([patched("console"), patched("analysis", "StatefulSet")])).to.deep.equal({
      type: "WorkloadsPatched",
      status: "True",
      reason: "Patched",
      message: "Deployment console, StatefulSet analysis mount the client Secret and the CAST .ini",
    });
  });

  it("the first workload not Patched explains, with the reason of its problem", () => {
    const c = workloadsCondition([
      patched("console"),
      {
        status: { kind: "Deployment", name: "dashboards", state: "Conflict", message: "volume clash" },
        problem: { reason: "WorkloadConflict" },
      },
      { status: { kind: "StatefulSet", name: "analysis", state: "NotFound", message: "gone" }, problem: { reason: "WorkloadNotFound" } },
    ]);
    expect(c).to.deep.equal({
      type: "WorkloadsPatched",
      status: "False",
      reason: "WorkloadConflict",
      message: "Deployment dashboards: volume clash",
    });
  });

  it("a Pending workload without problem: reason Pending", () => {
    const c = workloadsCondition([
      {
        status: { kind: "StatefulSet", name: "analysis", state: "Pending", message: "waiting for the operator to patch the pod template" },
      },
      {
        status: { kind: "Deployment", name: "dashboards", state: "Conflict", message: "volume clash" },
        problem: { reason: "WorkloadConflict" },
      },
    ]);
    expect(c).to.deep.equal({
      type: "WorkloadsPatched",
      status: "False",
      reason: "Pending",
      message: "StatefulSet analysis: waiting for the operator to patch the pod template",
    });
  });

  it("without problem or message: the state is the reason and the message", () => {
    expect(workloadsCondition([patched("console"), { status: { kind: "Deployment", name: "x", state: "NotFound" } }])).to.deep.equal({
      type: "WorkloadsPatched",
      status: "False",
      reason: "NotFound",
      message: "Deployment x: NotFound",
    });
    expect(workloadsCondition([{ status: { kind: "Deployment", name: "x", state: "Pending" } }])).to.deep.equal({
      type: "WorkloadsPatched",
      status: "False",
      reason: "Pending",
      message: "Deployment x: Pending",
    });
  });

  it("a problem's reason wins over the state", () => {
    expect(workloadsCondition([
      { status: { kind: "Deployment", name: "x", state: "NotFound", message: "no container" }, problem: { reason: "ContainerNotFound" } },
    ]).reason).to.equal("ContainerNotFound");
  });
});

describe("summarize (ImagingConnection Ready)", () => {
  const certOk: ConditionInput = { type: "CertificateReady", status: "True", reason: "UpToDate", message: "CN=app" };
  const notRevoked: ConditionInput = {
    type: "Revoked",
    status: "False",
    reason: "NotRevoked",
    message: "the database does not revoke this connection",
  };
  const workloadsOk: ConditionInput = {
    type: "WorkloadsPatched",
    status: "True",
    reason: "Patched",
    message: "Deployment console mounts it",
  };
  const verified: ConditionInput = { type: "ConnectionVerified", status: "True", reason: "LoggedIn", message: "logged in" };
  const connected = {
    type: "Ready",
    status: "True",
    reason: "Connected",
    message: "the client certificate is issued, mounted where listed, and logs in to the database",
  };

  it("is True when everything is, and Revoked is False", () => {
    expect(summarize([notRevoked, certOk, workloadsOk, verified])).to.deep.equal(connected);
    expect(summarize([])).to.deep.equal(connected);
  });

  it("Revoked True blocks Ready", () => {
    const revoked: ConditionInput = {
      type: "Revoked",
      status: "True",
      reason: "RevokedByDatabase",
      message: "revoked by trust.revocations[0]",
    };
    expect(summarize([revoked, certOk, workloadsOk, verified])).to.deep.equal({
      type: "Ready",
      status: "False",
      reason: "RevokedByDatabase",
      message: "Revoked: revoked by trust.revocations[0]",
    });
  });

  it("a Revoked of status Unknown does not block", () => {
    expect(summarize([{ ...notRevoked, status: "Unknown" }, certOk]).status).to.equal("True");
  });

  it("disabled verification does not block; other Unknown verification does", () => {
    const disabled: ConditionInput = {
      type: "ConnectionVerified",
      status: "Unknown",
      reason: "VerificationDisabled",
      message: "spec.verification.enabled is false",
    };
    expect(summarize([notRevoked, certOk, workloadsOk, disabled])).to.deep.equal(connected);
    const waiting: ConditionInput = {
      type: "ConnectionVerified",
      status: "Unknown",
      reason: "WaitingForDatabase",
      message: "db not Ready",
    };
    expect(summarize([notRevoked, certOk, workloadsOk, waiting])).to.deep.equal({
      type: "Ready",
      status: "False",
      reason: "WaitingForDatabase",
      message: "ConnectionVerified: db not Ready",
    });
  });

  it("the first condition that is not True gives the reason, its message prefixed with its type", () => {
    const r = summarize([
      notRevoked,
      certOk,
      { type: "WorkloadsPatched", status: "False", reason: "WorkloadConflict", message: "Deployment console: volume clash" },
      { type: "ConnectionVerified", status: "False", reason: "Unreachable", message: "down" },
    ]);
    expect(r).to.deep.equal({
      type: "Ready",
      status: "False",
      reason: "WorkloadConflict",
      message: "WorkloadsPatched: Deployment console: volume clash",
    });
  });

  it("follows the order given: a certificate problem before a revocation explains first", () => {
    const r = summarize([
      { type: "CertificateReady", status: "False", reason: "Revoked", message: "the database revokes it" },
      { type: "Revoked", status: "True", reason: "RevokedByDatabase", message: "revoked" },
    ]);
    expect(r).to.deep.equal({ type: "Ready", status: "False", reason: "Revoked", message: "CertificateReady: the database revokes it" });
  });
});

describe("settingUpQuietly (a connection applied together with its database)", () => {
  const now = new Date("2026-11-23T12:00:00Z");
  const imcAged = (ageMs: number, reported = false) =>
    ({
      metadata: { name: "c", namespace: "n", creationTimestamp: new Date(now.getTime() - ageMs).toISOString() },
      spec: {},
      ...(reported ? {
        status: { conditions: [{ type: "Ready", status: "False", reason: "DatabaseNotReady", message: "", lastTransitionTime: "" }] },
      } : {}),
    }) as unknown as ImagingConnectionObject;
  const db = (ready?: "True" | "False") => ({
    metadata: { name: "d", namespace: "n" },
    spec: {},
    ...(ready ? { status: { conditions: [{ type: "Ready", status: ready }] } } : {}),
  }) as unknown as SecureDatabaseObject;

  it("waits without a status write while its database has not reported yet, until the grace ends", () => {
    expect(settingUpQuietly(
      imcAged(5000),
      db(),
      "DatabaseNotReady",
      now,
    )).to.deep.equal(new Date(now.getTime() - 5000 + DATABASE_SETUP_GRACE_MS));
    expect(settingUpQuietly(
      imcAged(120_000),
      db(),
      "WaitingForTrust",
      now,
    )).to.deep.equal(new Date(now.getTime() - 120_000 + DATABASE_SETUP_GRACE_MS));
  });

  it("reports at once once the database has spoken, past the grace, once it has a status itself, and for other reasons", () => {
    expect(settingUpQuietly(imcAged(1000), db("False"), "DatabaseNotReady", now)).to.equal(undefined);
    expect(settingUpQuietly(imcAged(1000), db("True"), "WaitingForTrust", now)).to.equal(undefined);
    expect(settingUpQuietly(imcAged(DATABASE_SETUP_GRACE_MS), db(), "DatabaseNotReady", now)).to.equal(undefined);
    expect(settingUpQuietly(imcAged(1000, true), db(), "DatabaseNotReady", now)).to.equal(undefined);
    expect(settingUpQuietly(imcAged(1000), db(), "SecretConflict", now)).to.equal(undefined);
    const noTimestamp = { metadata: { name: "c", namespace: "n" }, spec: {} } as unknown as ImagingConnectionObject;
    expect(settingUpQuietly(noTimestamp, db(), "DatabaseNotReady", now)).to.equal(undefined);
  });
});
