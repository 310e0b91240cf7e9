import { expect } from "chai";
import * as k8s from "@kubernetes/client-node";
import { controlPlane } from "../support/hooks";
import { OPERATOR_USER } from "../support/controlplane";
import { psql, startPostgres, type PostgresServer } from "../support/postgres";

describe("test fixtures", () => {
  describe("control plane", () => {
    it("is a real kube-apiserver of the pinned release with RBAC enforced for the operator identity", async () => {
      const cp = controlPlane();
      expect(cp.version).to.match(/^v1\.36\./);
      // The shipped RBAC grants no access to pods.
      const denied = await cp.kubectl(["get", "pods", "-A"], { kubeconfig: cp.operatorKubeconfigPath });
      expect(denied.code).to.not.equal(0);
      expect(denied.stderr).to.contain(`User "${OPERATOR_USER}" cannot list resource "pods"`);
      const granted = await cp.kubectl(["get", "configmaps", "-A"], { kubeconfig: cp.operatorKubeconfigPath });
      expect(granted.code, granted.stderr).to.equal(0);
    });

    it("records the operator's requests in the audit log", async () => {
      const cp = controlPlane();
      const since = new Date(Date.now() - 1000);
      await cp.kubectl(["get", "pods", "-n", "default"], { kubeconfig: cp.operatorKubeconfigPath });
      const events = await cp.auditEvents(OPERATOR_USER, since);
      const lists = events.filter((e) => e.verb === "list" && e.objectRef?.resource === "pods");
      expect(lists).to.have.length.greaterThan(0);
      expect(lists[0]?.responseStatus?.code).to.equal(403);
    });

    it("gives each test a fresh namespace", async () => {
      const cp = controlPlane();
      const a = await cp.createNamespace("fixture");
      const b = await cp.createNamespace("fixture");
      expect(a).to.not.equal(b);
      const ns = await cp.kubeConfig.makeApiClient(k8s.CoreV1Api).readNamespace({ name: a });
      expect(ns.status?.phase).to.equal("Active");
    });
  });

  describe("PostgreSQL", () => {
    let pg: PostgresServer;
    before(async () => {
      pg = await startPostgres({ name: "smoke" });
    });
    after(async () => pg?.stop());

    it("starts a real PostgreSQL 15 that accepts a TCP connection from psql", async () => {
      const r = await psql({ host: pg.host, port: pg.port, user: pg.superuser, sslmode: "disable", command: "SHOW server_version_num" });
      expect(r.stderr).to.equal("");
      expect(Number(r.stdout.trim())).to.be.within(150000, 159999);
    });

    it("applies replaced configuration files on reload", async () => {
      const conf = await pg.sql("SHOW config_file");
      expect(conf.trim()).to.equal(`${pg.dataDir}/postgresql.conf`);
      await pg.setConfig({ pgHba: "local all all trust\nhost all all 127.0.0.1/32 reject\n" });
      await pg.reload();
      const refused = await psql({ host: pg.host, port: pg.port, user: pg.superuser, sslmode: "disable", command: "SELECT 1" });
      expect(refused.code).to.not.equal(0);
      expect(refused.stderr).to.contain("pg_hba.conf rejects connection");
    });

    it("survives a restart", async () => {
      await pg.restart();
      expect((await pg.sql("SELECT 1")).trim()).to.equal("1");
    });
  });
});
