import { expect } from "chai";
import type { ConditionInput } from "../../../../src/kube/conditions";
import type { OperatorContext, SecureDatabaseObject } from "../../../../src/reconcilers/context";
import { planTarget, resolveConnection, type Resolved, type TargetProblem } from "../../../../src/reconcilers/imaging-connection/target";
import { deleted, imagingConnection, NS, resolved, secureDatabase, target } from "./fixtures";

const notRevoked: ConditionInput = {
  type: "Revoked",
  status: "False",
  reason: "NotRevoked",
  message: "the database does not revoke this connection",
};

/** Only what resolveConnection reads: the SecureDatabase cache and the watched namespaces. */
function context(databases: SecureDatabaseObject[], watchedNamespaces?: string[]): OperatorContext {
  const get = (ns: string | undefined, name: string) => databases.find((d) => d.metadata.namespace === ns && d.metadata.name === name);
  return { watchedNamespaces, cache: { secureDatabases: { get } } } as unknown as OperatorContext;
}

describe("resolveConnection (may this connection have an identity from that database?)", () => {
  const rows: {
    name: string;
    ctx: OperatorContext;
    imc: ReturnType<typeof imagingConnection>;
    problem?: TargetProblem["reason"];
    message?: string;
  }[] = [
    { name: "its database, same namespace", ctx: context([secureDatabase()]), imc: imagingConnection("app") },
    {
      name: "no such database",
      ctx: context([]),
      imc: imagingConnection("app"),
      problem: "DatabaseNotFound",
      message: `SecureDatabase ${NS}/db (spec.databaseRef) does not exist, or is in a namespace the operator does not watch`,
    },
    {
      name: "a database in a namespace not watched",
      ctx: context([], ["imaging"]),
      imc: imagingConnection("app", { databaseRef: { name: "db", namespace: "data" } }),
      problem: "NamespaceNotWatched",
      message:
        "SecureDatabase data/db (spec.databaseRef) is in a namespace the operator does not watch (it watches imaging): " +
        'add "data" to WATCH_NAMESPACE and give the operator its Role there',
    },
    {
      name: "a database being deleted",
      ctx: context([deleted(secureDatabase())]),
      imc: imagingConnection("app"),
      problem: "DatabaseDeleting",
      message: `SecureDatabase ${NS}/db is being deleted: no new certificates are issued from its CA`,
    },
    {
      name: "another namespace the database grants nothing",
      ctx: context([{ ...secureDatabase(), metadata: { name: "db", namespace: "data" } }]),
      imc: imagingConnection("app", { databaseRef: { name: "db", namespace: "data" } }),
      problem: "NamespaceNotAllowed",
      message: `SecureDatabase data/db grants no identity to namespace "${NS}": its owner must add a grant for it to spec.access (namespaces, users)`,
    },
    {
      name: "another namespace listed only in the deprecated allowedNamespaces",
      ctx: context([{ ...secureDatabase({ allowedNamespaces: [NS] }), metadata: { name: "db", namespace: "data" } }]),
      imc: imagingConnection("app", { databaseRef: { name: "db", namespace: "data" } }),
      problem: "NamespaceNotAllowed",
      message:
        `SecureDatabase data/db grants no identity to namespace "${NS}" (it lists the namespace in spec.allowedNamespaces, which grants ` +
        "nothing since spec.access exists): its owner must add a grant for it to spec.access (namespaces, users)",
    },
    {
      name: "another namespace the database grants",
      ctx: context([{ ...secureDatabase({ access: [{ namespaces: [NS], users: ["cast_app"] }] }), metadata: { name: "db", namespace: "data" } }]),
      imc: imagingConnection("app", { databaseRef: { name: "db", namespace: "data" } }),
    },
    {
      name: "the database's reload admin role, even when a grant names it",
      ctx: context([secureDatabase({ access: [{ users: ["postgres"] }] })]),
      imc: imagingConnection("app", { user: "postgres" }),
      problem: "AdminRoleNotIssued",
    },
    {
      name: "a workload mount the grant does not allow",
      ctx: context([secureDatabase({ access: [{ users: ["cast_app"] }] })]),
      imc: imagingConnection("app", { workloads: [{ kind: "Deployment", name: "web" }] }),
      problem: "MountNotAllowed",
    },
    {
      name: "a mount path outside the operator's prefix (it would hide the container's programs)",
      ctx: context([secureDatabase()]),
      imc: imagingConnection("app", { workloads: [{ kind: "Deployment", name: "web", mountPath: "/usr/local/bin" }] }),
      problem: "MountPathNotAllowed",
      message:
        "spec.workloads[0].mountPath /usr/local/bin is outside /etc/cast-imaging/, the only directory the operator mounts identities " +
        "into (so that no connection can hide a container's own files): choose a path under it (the default is /etc/cast-imaging/mtls/<connection>)",
    },
    {
      name: "a mount path under another prefix the operator was given",
      ctx: { ...context([secureDatabase()]), mountPathPrefix: "/opt/cast/" } as OperatorContext,
      imc: imagingConnection("app", { workloads: [{ kind: "Deployment", name: "web", mountPath: "/opt/cast/mtls" }] }),
    },
    {
      name: "a connection the database revokes",
      ctx: context([secureDatabase({ trust: { revocations: [{ connectionName: "app" }] } })]),
      imc: imagingConnection("app"),
      problem: "Revoked",
      message:
        `SecureDatabase ${NS}/db revokes this connection (spec.trust.revocations[].connectionName): ` +
        "no certificate is issued until that entry is removed",
    },
    {
      name: "a user no hba rule admits",
      ctx: context([secureDatabase({ postgres: { configMapName: "pg", hba: { rules: [{ users: ["someone_else"] }] } } })]),
      imc: imagingConnection("app"),
      problem: "UserNotAdmitted",
    },
    { name: "an invalid spec", ctx: context([secureDatabase()]), imc: imagingConnection("app", { user: "" }), problem: "InvalidSpec" },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const r = resolveConnection(row.ctx, row.imc);
      if (!row.problem) {
        expect(r.ok).to.equal(true);
        return;
      }
      expect(r.ok).to.equal(false);
      if (r.ok) return;
      expect(r.problem.reason).to.equal(row.problem);
      if (row.message) expect(r.problem.message).to.equal(row.message);
    });
  }
});

describe("planTarget (step 1's conditions and event)", () => {
  const imc = imagingConnection("app");
  const spec = resolved(imc);
  const refused = (reason: TargetProblem["reason"], message: string): Resolved => ({ ok: false, spec, problem: { reason, message } });
  const rows: {
    name: string;
    resolved: Resolved;
    conditions: ConditionInput[];
    events: { type: string; reason: string; message: string }[];
  }[] = [
    {
      name: "resolved: not revoked, nothing to say",
      resolved: { ok: true, spec, target: target(secureDatabase()) },
      conditions: [notRevoked],
      events: [],
    },
    {
      name: "no database: CertificateReady False with the reason, one Warning",
      resolved: refused("DatabaseNotFound", "gone"),
      conditions: [{ type: "CertificateReady", status: "False", reason: "DatabaseNotFound", message: "gone" }, notRevoked],
      events: [{ type: "Warning", reason: "DatabaseNotFound", message: "gone" }],
    },
    {
      name: "revoked: Revoked True by the database",
      resolved: refused("Revoked", "trust.revocations[0] names ImagingConnection app"),
      conditions: [
        { type: "CertificateReady", status: "False", reason: "Revoked", message: "trust.revocations[0] names ImagingConnection app" },
        { type: "Revoked", status: "True", reason: "RevokedByDatabase", message: "trust.revocations[0] names ImagingConnection app" },
      ],
      events: [{ type: "Warning", reason: "Revoked", message: "trust.revocations[0] names ImagingConnection app" }],
    },
    {
      name: "user not admitted",
      resolved: refused("UserNotAdmitted", "no hba rule admits cast_app"),
      conditions: [
        { type: "CertificateReady", status: "False", reason: "UserNotAdmitted", message: "no hba rule admits cast_app" },
        notRevoked,
      ],
      events: [{ type: "Warning", reason: "UserNotAdmitted", message: "no hba rule admits cast_app" }],
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(planTarget(row.resolved)).to.deep.equal({ conditions: row.conditions, events: row.events });
    });
  }
});
