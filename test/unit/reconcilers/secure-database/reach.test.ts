import { expect } from "chai";
import { allowanceEntryProblem, endpointAllowance, endpointProblem, isServiceOf, NO_ALLOWANCE } from "../../../../src/reconcilers/secure-database/reach";

describe("reach: where the operator may dial for a SecureDatabase", () => {
  describe("Services of the database's namespace, as cluster DNS names them from anywhere", () => {
    for (const host of ["db.cast", "db.cast.svc", "db.cast.svc.cluster.local", "db-0.db.cast.svc.cluster.local", "DB.Cast.svc"]) {
      it(`${host}: yes`, () => expect(isServiceOf(host, "cast")).to.equal(true));
    }
    for (const host of ["db", "db.other.svc", "db.cast.example.com", "cast", "a.b.c.cast.svc", "db.castle.svc"]) {
      it(`${host}: no`, () => expect(isServiceOf(host, "cast")).to.equal(false));
    }
  });

  it("refuses anything else by default, naming the fix", () => {
    expect(endpointProblem("10.96.0.1", "cast", NO_ALLOWANCE)).to.equal(
      "the operator dials only Services of namespace cast (e.g. <service>.cast.svc), not 10.96.0.1: point spec.verification.endpoint " +
        "(or spec.host) at the database's Service, or ask the cluster admin to allow 10.96.0.1 with --allowed-endpoints",
    );
    expect(endpointProblem("pg.example.com", "cast", NO_ALLOWANCE)).to.match(/not pg\.example\.com/);
    expect(endpointProblem("db.cast.svc", "cast", NO_ALLOWANCE)).to.equal(undefined);
  });

  it("allows exact hosts, *.suffixes, IPs and CIDRs the admin lists, and names them when it refuses", () => {
    const allowance = endpointAllowance(["pg.corp.example", "*.rds.example.com", "10.0.0.0/8", "::1", "192.0.2.7"]);
    for (const host of ["pg.corp.example", "PG.corp.example", "a.rds.example.com", "10.1.2.3", "::1", "192.0.2.7"]) {
      expect(endpointProblem(host, "cast", allowance), host).to.equal(undefined);
    }
    for (const host of ["other.corp.example", "rds.example.com", "11.0.0.1", "192.0.2.8", "::2"]) {
      expect(endpointProblem(host, "cast", allowance), host).to.contain("or what the operator allows (--allowed-endpoints pg.corp.example,*.rds.example.com,10.0.0.0/8,::1,192.0.2.7)");
    }
  });

  it("checks each --allowed-endpoints entry", () => {
    for (const ok of ["10.0.0.0/8", "::1", "fd00::/8", "pg.example.com", "*.example.com"]) expect(allowanceEntryProblem(ok), ok).to.equal(undefined);
    for (const bad of ["*", "*.", "10.0.0.0/33", "pg example", "http://pg", "*.*.example.com"]) {
      expect(allowanceEntryProblem(bad), bad).to.equal("is not an IP address, a CIDR, a DNS name or *.<DNS name>");
    }
  });
});
