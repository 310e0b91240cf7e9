import { expect } from "chai";
import type { ImagingConnectionStatus, SecureDatabaseStatus } from "../../../src/api/types";
import { PluginError } from "../../../src/plugin/errors";
import { elapsedLabel, follow, type Progress } from "../../../src/plugin/follow";
import { toResource } from "../../../src/plugin/resources";
import {
  blockingCondition,
  rotationAnnotation,
  rotationBaseline,
  rotationPatch,
  rotationProgress,
  rotationTarget,
  rotationTimeoutMessage,
  rotationToken,
} from "../../../src/plugin/rotate";
import { capture, condition, connection, database, NOW, pki, type Pki } from "./fixtures";

describe("kubectl mtls rotate (pure)", () => {
  let p: Pki;
  before(async () => {
    p = await pki();
  });
  const sdb = (status: Partial<SecureDatabaseStatus> = {}) => toResource("SecureDatabase", database(p, status));
  const imc = (status: Partial<ImagingConnectionStatus> = {}) => toResource("ImagingConnection", connection(p, status));

  it("patches only the rotate annotation (rotate-ca with --ca), with a token no earlier rotation used", () => {
    expect(rotationPatch("server", "t1")).to.deep.equal({ metadata: { annotations: { "mtls.imaging.dev/rotate": "t1" } } });
    expect(rotationPatch("ca", "t1")).to.deep.equal({ metadata: { annotations: { "mtls.imaging.dev/rotate-ca": "t1" } } });
    expect(rotationAnnotation("client")).to.equal("mtls.imaging.dev/rotate");
    expect(rotationToken(NOW, "a1b2c3")).to.equal("20260301T120000Z-a1b2c3");
    expect(rotationToken(NOW, "a1b2c3")).to.not.equal(rotationToken(NOW, "d4e5f6"));
  });

  it("rotates a database's server certificate or CA, a connection's client certificate; --ca on a connection is refused", () => {
    expect(rotationTarget("SecureDatabase", false)).to.equal("server");
    expect(rotationTarget("SecureDatabase", true)).to.equal("ca");
    expect(rotationTarget("ImagingConnection", false)).to.equal("client");
    expect(() => rotationTarget("ImagingConnection", true)).to.throw(PluginError, /--ca rotates a database's CA: write kubectl mtls rotate sdb\/NAME --ca/);
  });

  describe("a server certificate", () => {
    it("is requested until the operator honours the token, issued until served, done once the new serial is served", () => {
      const before = rotationBaseline("server", sdb());
      expect(before).to.deep.equal({ serial: p.server.serialNumber, served: p.server.serialNumber });
      const requested = rotationProgress("server", before, "t1", sdb());
      expect(requested).to.deep.include({ done: false });
      expect(requested.line).to.equal('rotation "t1" requested: waiting for the operator to issue a new server certificate');

      const issuedStatus: Partial<SecureDatabaseStatus> = {
        serverCertificate: { serialNumber: "0abc", lastRotationToken: "t1" },
        conditions: [condition("Verified", "False", "ServingPreviousCertificate", "the server serves the old one"), condition("Ready", "False", "ServingPreviousCertificate")],
      };
      const issued = rotationProgress("server", before, "t1", sdb(issuedStatus));
      expect(issued.done).to.equal(false);
      expect(issued.phase).to.not.equal(requested.phase);
      expect(issued.line).to.equal(
        `issued server certificate serial 0abc: waiting for the server to serve it (it serves ${p.server.serialNumber}) (Verified False ServingPreviousCertificate: the server serves the old one)`,
      );

      const served = rotationProgress("server", before, "t1", sdb({ ...issuedStatus, verification: { servedSerialNumber: "0abc" }, conditions: [condition("Ready", "True", "Secured")] }));
      expect(served).to.deep.equal({ phase: "done", line: `the server serves the new certificate, serial 0abc (was ${p.server.serialNumber})`, done: true });
    });

    it("is not done by a serial served before the rotation, nor by another token's certificate", () => {
      const before = { serial: "01", served: "0abc" };
      expect(rotationProgress("server", before, "t1", sdb({ serverCertificate: { serialNumber: "0abc", lastRotationToken: "t1" }, verification: { servedSerialNumber: "0abc" } })).done).to.equal(false);
      expect(rotationProgress("server", { serial: "01", served: "01" }, "t1", sdb({ serverCertificate: { serialNumber: "0abc", lastRotationToken: "t0" }, verification: { servedSerialNumber: "0abc" } })).done).to.equal(false);
    });
  });

  describe("a client certificate", () => {
    it("is done with a new serial, Ready True and (when it logs in) a login with the new serial", () => {
      const before = rotationBaseline("client", imc());
      expect(before.serial).to.equal(p.client.serialNumber);
      expect(rotationProgress("client", before, "t1", imc()).line).to.contain("waiting for the operator to issue a new client certificate");
      const issued = { certificate: { serialNumber: "0def", lastRotationToken: "t1" } };
      const waiting = rotationProgress("client", before, "t1", imc(issued));
      expect(waiting).to.deep.include({ done: false, line: "issued client certificate serial 0def: waiting for Ready" });
      const done = rotationProgress("client", before, "t1", imc({ ...issued, verification: { serialNumber: "0def" } }));
      expect(done).to.deep.include({ done: true, line: `client certificate serial 0def (was ${p.client.serialNumber}) is in use: Ready True Connected` });
    });
  });

  describe("a CA", () => {
    it("goes through its phases, each a line of its own, and is done back in Idle with a new CA serial", () => {
      const before = rotationBaseline("ca", sdb());
      expect(before.serial).to.equal(p.ca.facts.serialNumber);
      const start = rotationProgress("ca", before, "t1", sdb());
      expect(start.line).to.equal('CA rotation "t1" requested: waiting for the operator to start it');
      const phases = ["Overlap", "Reissuing", "Finishing"] as const;
      const seen = phases.map((phase) => rotationProgress("ca", before, "t1", sdb({ caRotation: { phase, message: `${phase === "Overlap" ? "Overlap: " : ""}in ${phase}` } })));
      expect(seen.map((s) => s.line)).to.deep.equal(["CA rotation Overlap: in Overlap", "CA rotation Reissuing: in Reissuing", "CA rotation Finishing: in Finishing"]);
      expect(new Set(seen.map((s) => s.phase)).size).to.equal(3);
      const done = rotationProgress("ca", before, "t1", sdb({ caRotation: { phase: "Idle" }, ca: { serialNumber: "77" } }));
      expect(done).to.deep.include({ done: true, line: `the CA is rotated: serial 77 (was ${p.ca.facts.serialNumber}), rotation Idle` });
    });
  });

  it("names the condition that holds it back on timeout, in the operator's own judgement", () => {
    const r = sdb({ conditions: [condition("CARotating", "False", "Idle"), condition("Reloaded", "False", "WaitingForFiles", "the kubelet has not laid the files down"), condition("Ready", "False", "WaitingForFiles")] });
    expect(blockingCondition(r)).to.deep.equal({ key: "Reloaded/WaitingForFiles", text: "Reloaded False WaitingForFiles: the kubelet has not laid the files down" });
    const progress = rotationProgress("server", { serial: "01", served: "01" }, "t1", r);
    expect(rotationTimeoutMessage(progress, r, 120_000)).to.equal(
      'timed out after 2m: rotation "t1" requested: waiting for the operator to issue a new server certificate; held back by Reloaded False WaitingForFiles: the kubelet has not laid the files down',
    );
    expect(blockingCondition(sdb())).to.equal(undefined);
    expect(rotationTimeoutMessage(progress, sdb(), 90_000)).to.match(/^timed out after 1m30s: .*; no condition says why: is the operator running and watching this namespace\?$/);
  });
});

describe("kubectl mtls follow", () => {
  it("prints one line per phase change with the elapsed time, and stops when done", async () => {
    let t = 0;
    const advance = (ms: number) => {
      t += ms;
      return Promise.resolve();
    };
    const phases: Progress[] = [
      { phase: "a", line: "first", done: false },
      { phase: "a", line: "first again", done: false },
      { phase: "b", line: "second", done: false },
      { phase: "done", line: "third", done: true },
    ];
    let i = 0;
    const c = capture();
    const r = await follow(() => Promise.resolve(i++), (n) => phases[n]!, { timeoutMs: 60_000, out: c.out, clock: () => t, sleep: (ms) => advance(ms) });
    expect(r.done).to.equal(true);
    expect(c.stdout).to.equal("[   0.0s] first\n[   2.0s] second\n[   3.0s] third\n");
    expect(elapsedLabel(123_456)).to.equal("[ 123.5s]");
  });

  it("gives up at the timeout with the last read, having read at least once", async () => {
    let t = 0;
    const advance = (ms: number) => {
      t += ms;
      return Promise.resolve();
    };
    const c = capture();
    const r = await follow(() => Promise.resolve("x"), () => ({ phase: "p", line: "waiting", done: false }), { timeoutMs: 2500, out: c.out, clock: () => t, sleep: (ms) => advance(ms) });
    expect(r).to.deep.include({ done: false, value: "x" });
    expect(r.elapsedMs).to.equal(2500);
    expect(c.stdout).to.equal("[   0.0s] waiting\n");
  });
});
