import { expect } from "chai";
import { decideAccess, type AccessRequest, type DatabaseAccess } from "../../../src/api/access";
import type { AccessGrant } from "../../../src/api/secure-database";
import { validateSecureDatabase } from "../../../src/api/validate";

const db = (access: AccessGrant[] | undefined, extra: Partial<DatabaseAccess["spec"]> = {}): DatabaseAccess => ({
  namespace: "data",
  name: "db",
  spec: { ...(access ? { access } : {}), ...extra },
});
const request = (over: Partial<AccessRequest> = {}): AccessRequest => ({
  namespace: "data",
  user: "operator",
  database: "postgres",
  duration: "2160h",
  mounts: false,
  ...over,
});

describe("api/access: who may obtain which identity (spec.access)", () => {
  describe("refuses what no grant names, with the reason and the grant it broke", () => {
    const rows: { name: string; db: DatabaseAccess; request: AccessRequest; reason: string; message: string }[] = [
      {
        name: "no grants at all",
        db: db(undefined),
        request: request(),
        reason: "NamespaceNotAllowed",
        message: 'SecureDatabase data/db grants no identity to namespace "data": its owner must add a grant for it to spec.access (namespaces, users)',
      },
      {
        name: "the reload admin role (default postgres), even granted",
        db: db([{ users: ["postgres", "operator"] }]),
        request: request({ user: "postgres" }),
        reason: "AdminRoleNotIssued",
        message:
          '"postgres" is the role SecureDatabase data/db reloads and verifies the server with (spec.reload.adminUser): it is never issued ' +
          "to an ImagingConnection; ask the database's owner for a role of its own",
      },
      {
        name: "a reload admin role of another name",
        db: db([{ users: ["operator"] }], { reload: { adminUser: "dba" } }),
        request: request({ user: "dba" }),
        reason: "AdminRoleNotIssued",
        message:
          '"dba" is the role SecureDatabase data/db reloads and verifies the server with (spec.reload.adminUser): it is never issued ' +
          "to an ImagingConnection; ask the database's owner for a role of its own",
      },
      {
        name: "a grant without namespaces covers only the database's own",
        db: db([{ users: ["operator"] }]),
        request: request({ namespace: "tenant" }),
        reason: "NamespaceNotAllowed",
        message: 'SecureDatabase data/db grants no identity to namespace "tenant": its owner must add a grant for it to spec.access (namespaces, users)',
      },
      {
        name: "a namespace only in the deprecated allowedNamespaces",
        db: db([{ users: ["operator"] }], { allowedNamespaces: ["tenant"] }),
        request: request({ namespace: "tenant" }),
        reason: "NamespaceNotAllowed",
        message:
          'SecureDatabase data/db grants no identity to namespace "tenant" (it lists the namespace in spec.allowedNamespaces, which grants ' +
          "nothing since spec.access exists): its owner must add a grant for it to spec.access (namespaces, users)",
      },
      {
        name: "a user the namespace's grants do not name (all of them listed)",
        db: db([{ users: ["operator"] }, { users: ["viewer"], namespaces: ["data", "other"] }, { users: ["elsewhere"], namespaces: ["other"] }]),
        request: request({ user: "keycloak" }),
        reason: "UserNotAllowed",
        message: 'SecureDatabase data/db grants namespace "data" the users "operator", "viewer" (spec.access), not "keycloak"',
      },
      {
        name: "a database the user's grants do not name",
        db: db([{ users: ["operator"], databases: ["analysis", "measure"] }]),
        request: request({ database: "postgres" }),
        reason: "DatabaseNotAllowed",
        message: 'SecureDatabase data/db grants user "operator" in namespace "data" the databases "analysis", "measure" (spec.access), not "postgres"',
      },
      {
        name: "a lifetime longer than the default maxDuration (2160h)",
        db: db([{ users: ["operator"] }]),
        request: request({ duration: "87000h" }),
        reason: "DurationNotAllowed",
        message: "spec.certificate.duration 87000h is longer than SecureDatabase data/db allows this identity: at most 2160h (spec.access[0].maxDuration)",
      },
      {
        name: "a lifetime longer than every matching grant: the longest is named",
        db: db([{ users: ["operator"], maxDuration: "24h" }, { users: ["operator"], maxDuration: "720h" }]),
        request: request({ duration: "721h" }),
        reason: "DurationNotAllowed",
        message: "spec.certificate.duration 721h is longer than SecureDatabase data/db allows this identity: at most 720h (spec.access[1].maxDuration)",
      },
      {
        name: "a mount into workloads the grant does not allow",
        db: db([{ users: ["operator"] }]),
        request: request({ mounts: true }),
        reason: "MountNotAllowed",
        message:
          'SecureDatabase data/db does not let this identity be mounted into workloads of namespace "data" (spec.access[0].mountIntoWorkloads ' +
          "is not true): remove spec.workloads and spec.castImaging, or ask the database's owner to allow it",
      },
    ];
    for (const row of rows) {
      it(row.name, () => expect(decideAccess(row.db, row.request)).to.deep.equal({ allowed: false, reason: row.reason, message: row.message }));
    }
  });

  describe("allows what one grant names entirely", () => {
    it("the database's own namespace by default", () => {
      expect(decideAccess(db([{ users: ["operator"] }]), request())).to.deep.equal({ allowed: true, grant: 0 });
    });
    it("another namespace the grant lists; the grant that allows all of it is the one named", () => {
      const grants: AccessGrant[] = [
        { users: ["operator"], namespaces: ["tenant"], maxDuration: "24h" },
        { users: ["operator"], namespaces: ["tenant"], maxDuration: "720h", mountIntoWorkloads: true },
      ];
      expect(decideAccess(db(grants), request({ namespace: "tenant", duration: "100h", mounts: true }))).to.deep.equal({ allowed: true, grant: 1 });
    });
    it("a database the grant lists, a lifetime exactly at maxDuration", () => {
      const grants: AccessGrant[] = [{ users: ["operator"], databases: ["analysis"], maxDuration: "720h" }];
      expect(decideAccess(db(grants), request({ database: "analysis", duration: "720h" }))).to.deep.equal({ allowed: true, grant: 0 });
    });
    it("a namespace whose labels match a grant's namespaceSelector (besides the listed ones)", () => {
      const grants: AccessGrant[] = [{ users: ["operator"], namespaceSelector: { matchLabels: { team: "reporting", tier: "prod" } } }];
      const labelled = request({ namespace: "team-a", namespaceLabels: { team: "reporting", tier: "prod", other: "x" } });
      expect(decideAccess(db(grants), labelled)).to.deep.equal({ allowed: true, grant: 0 });
      // A selector alone does not cover the database's own namespace, nor a namespace missing one label.
      expect(decideAccess(db(grants), request({ namespaceLabels: {} })).allowed).to.equal(false);
      expect(decideAccess(db(grants), request({ namespace: "team-b", namespaceLabels: { team: "reporting" } })).allowed).to.equal(false);
    });
    it("a selector grant when the operator cannot read namespaces: refused, saying why", () => {
      const grants: AccessGrant[] = [{ users: ["operator"], namespaceSelector: { matchLabels: { team: "reporting" } } }];
      expect(decideAccess(db(grants), request({ namespace: "team-a" }))).to.deep.equal({
        allowed: false,
        reason: "NamespaceNotAllowed",
        message:
          'SecureDatabase data/db grants no identity to namespace "team-a" (its grants by namespaceSelector need an operator that reads ' +
          "namespaces: the cluster-wide install): its owner must add a grant for it to spec.access (namespaces, users)",
      });
    });
    it("the role named postgres when the operator reloads as another role", () => {
      expect(decideAccess(db([{ users: ["postgres"] }], { reload: { adminUser: "dba" } }), request({ user: "postgres" }))).to.deep.equal({ allowed: true, grant: 0 });
    });
  });

  describe("validation of the grants (what the CRD refuses too)", () => {
    const sdb = (access: unknown, reload?: unknown) => ({
      apiVersion: "mtls.imaging.dev/v1alpha1",
      kind: "SecureDatabase",
      metadata: { name: "db", namespace: "data" },
      spec: { host: "db.data.svc", postgres: { configMapName: "pg" }, access, ...(reload ? { reload } : {}) },
    });
    const errors = (access: unknown, reload?: unknown) => {
      return validateSecureDatabase(sdb(access, reload)).map((e) => `${e.field}: ${e.message}`);
    };
    it("accepts names, databases, a maxDuration and the mount permission", () => {
      expect(errors([{ namespaces: ["tenant"], users: ["operator", "Cast_Analysis"], databases: ["analysis"], maxDuration: "720h", mountIntoWorkloads: true }])).to.deep.equal([]);
    });
    for (const [what, access, expected] of [
      ["the reload admin role", [{ users: ["postgres"] }], 'spec.access[0].users[0]: access[].users must not name "postgres", the role the operator reloads and verifies with (reload.adminUser): it is never issued'],
      ["a keyword as user", [{ users: ["all"] }], "spec.access[0].users[0]: access[].users must be a role name, not a pg_hba.conf keyword"],
      ["a group as user", [{ users: ["+readers"] }], "spec.access[0].users[0]: access[].users must not start with '+' (pg_hba.conf group syntax)"],
      ["no users", [{ users: [] }], "spec.access[0].users: access[].users must name at least one role"],
      ["a role with shell syntax", [{ users: ["r$(id)"] }], "spec.access[0].users[0]: access[].users must be a plain name: letters, digits, '_', '.' and '-', starting with a letter or '_' (for other names see docs/security.md)"],
      ["a keyword as database", [{ users: ["app"], databases: ["all"] }], "spec.access[0].databases[0]: access[].databases must be a database name, not a pg_hba.conf keyword (omit databases for any)"],
      ["a namespace that is not a name", [{ users: ["app"], namespaces: ["*"] }], "spec.access[0].namespaces[0]: each namespace of a grant must be a namespace name (RFC 1123 label)"],
      ["an empty namespace list", [{ users: ["app"], namespaces: [] }], "spec.access[0].namespaces: access[].namespaces must not be empty (omit it for this database's namespace)"],
      ["a maxDuration in days", [{ users: ["app"], maxDuration: "90d" }], 'spec.access[0].maxDuration: access[].maxDuration must be a Go duration in h, m, s and ms (in that order), e.g. "2160h" or "1h30m"; days are not supported (got "90d")'],
    ] as const) {
      it(`refuses ${what}`, () => expect(errors(access)).to.include(expected));
    }
    it("refuses the admin role of another name, and allows postgres then", () => {
      expect(errors([{ users: ["dba"] }], { adminUser: "dba" })).to.deep.equal([
        'spec.access[0].users[0]: access[].users must not name "dba", the role the operator reloads and verifies with (reload.adminUser): it is never issued',
      ]);
    });
  });
});
