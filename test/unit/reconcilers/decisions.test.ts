import { expect } from "chai";
import { decideReload, servedMaterialHash } from "../../../src/reconcilers/secure-database/reload";
import { decideRemedy, type RemedyInput } from "../../../src/reconcilers/secure-database/workload";
import { summarize } from "../../../src/reconcilers/secure-database/status";
import { planConfigCleanup, planServerConfig } from "../../../src/reconcilers/secure-database/config";
import { resolveSecureDatabase } from "../../../src/api/defaults";
import type { SecureDatabase } from "../../../src/api/types";

const now = new Date("2026-11-23T12:00:00Z");
const base = { strategy: "SQL" as const, desiredHash: "a", appliedHash: "a", lastReloadTime: new Date(now.getTime() - 60_000), servingStale: false, now, retryAfterMs: 10_000 };

describe("decideReload", () => {
  it("reloads when the served material changed", () => {
    expect(decideReload({ ...base, desiredHash: "b" })).to.deep.equal({ reload: true, reason: "MaterialChanged" });
    expect(decideReload({ ...base, appliedHash: undefined })).to.deep.equal({ reload: true, reason: "MaterialChanged" });
  });
  it("does nothing when the server serves the current material", () => {
    expect(decideReload(base)).to.deep.equal({ reload: false, reason: "UpToDate" });
  });
  it("reloads again over SQL when the server still serves stale files after the retry delay, not before", () => {
    expect(decideReload({ ...base, servingStale: true })).to.deep.equal({ reload: true, reason: "StillServingStale" });
    expect(decideReload({ ...base, servingStale: true, lastReloadTime: new Date(now.getTime() - 5000) })).to.deep.equal({ reload: false, reason: "WaitingForFiles" });
  });
  it("reloads again every retryAfterMs within the settle window after a reload (late trust bundles and CRLs), over SQL only", () => {
    const settle = { ...base, settleWindowMs: 120_000, retryAfterMs: 3000 };
    expect(decideReload(settle)).to.deep.equal({ reload: true, reason: "AwaitingKubelet" });
    expect(decideReload({ ...settle, lastRepeatTime: new Date(now.getTime() - 1000) })).to.deep.equal({ reload: false, reason: "UpToDate", retryAt: new Date(now.getTime() + 2000) });
    expect(decideReload({ ...settle, lastReloadTime: new Date(now.getTime() - 120_000) })).to.deep.equal({ reload: false, reason: "UpToDate" });
    expect(decideReload({ ...settle, strategy: "RolloutRestart" })).to.deep.equal({ reload: false, reason: "UpToDate" });
    // A server that failed its last check is not reloaded every few seconds: the check's backoff paces the retries.
    expect(decideReload({ ...settle, lastCheckFailed: true })).to.deep.equal({ reload: false, reason: "UpToDate" });
    expect(decideReload(base)).to.deep.equal({ reload: false, reason: "UpToDate" });
  });
  it("never restarts a workload again just because files are late", () => {
    expect(decideReload({ ...base, strategy: "RolloutRestart", servingStale: true })).to.deep.equal({ reload: false, reason: "WaitingForFiles" });
  });
  it("hashes material stably and tells an absent part from an empty one", () => {
    expect(servedMaterialHash(["x", Buffer.from("y")])).to.equal(servedMaterialHash(["x", "y"]));
    expect(servedMaterialHash(["x", undefined])).to.not.equal(servedMaterialHash(["x", ""]));
    expect(servedMaterialHash(["ab", "c"])).to.not.equal(servedMaterialHash(["a", "bc"]));
  });
});

describe("decideRemedy (a server that dropped the managed configuration)", () => {
  const now = new Date("2026-11-23T12:00:00Z");
  const base: RemedyInput = { finding: "ServerNotServingTLS", strategy: "SQL", hasWorkload: true, lastRestartAt: undefined, lastReloadAt: undefined, now, restartIntervalMs: 120_000, reloadIntervalMs: 3000 };
  const ago = (ms: number) => new Date(now.getTime() - ms);

  it("restarts a server without TLS (it cannot be reloaded over mTLS), at most once per restart interval", () => {
    expect(decideRemedy(base)).to.deep.equal({ action: "Restart" });
    expect(decideRemedy({ ...base, lastRestartAt: ago(60_000) })).to.deep.equal({ action: "Wait", until: new Date(now.getTime() + 60_000) });
    expect(decideRemedy({ ...base, lastRestartAt: ago(120_000) })).to.deep.equal({ action: "Restart" });
    // A reload for another finding does not hold a restart back.
    expect(decideRemedy({ ...base, lastReloadAt: ago(1) })).to.deep.equal({ action: "Restart" });
  });

  it("reloads a server that serves TLS but accepts plain TCP (SQL), at most once per reload interval", () => {
    const plain = { ...base, finding: "PlaintextAccepted" as const };
    expect(decideRemedy(plain)).to.deep.equal({ action: "Reload" });
    expect(decideRemedy({ ...plain, lastReloadAt: ago(1000) })).to.deep.equal({ action: "Wait", until: new Date(now.getTime() + 2000) });
    expect(decideRemedy({ ...plain, lastRestartAt: ago(1) })).to.deep.equal({ action: "Reload" });
    // RolloutRestart never reloads: it restarts, under the restart interval.
    expect(decideRemedy({ ...plain, strategy: "RolloutRestart" })).to.deep.equal({ action: "Restart" });
    expect(decideRemedy({ ...plain, strategy: "RolloutRestart", lastRestartAt: ago(1000) })).to.deep.equal({ action: "Wait", until: new Date(now.getTime() + 119_000) });
  });

  it("leaves it to the admin, saying why, when it may not or cannot act", () => {
    expect(decideRemedy({ ...base, strategy: "None" })).to.deep.include({ action: "Manual" });
    expect(decideRemedy({ ...base, finding: "PlaintextAccepted", strategy: "None" })).to.deep.include({ action: "Manual" });
    const noWorkload = decideRemedy({ ...base, hasWorkload: false });
    expect(noWorkload).to.deep.include({ action: "Manual" });
    expect(noWorkload.action === "Manual" && noWorkload.why).to.contain("spec.workloadRef");
    // Without a workload a plain-TCP finding is still fixed by a reload over mTLS.
    expect(decideRemedy({ ...base, finding: "PlaintextAccepted", hasWorkload: false })).to.deep.equal({ action: "Reload" });
  });
});

describe("summarize (Ready)", () => {
  it("is True only when every condition is", () => {
    const ready = summarize([{ type: "CAReady", status: "True", reason: "CAGenerated", message: "" }]);
    expect(ready).to.include({ type: "Ready", status: "True", reason: "Secured" });
  });
  it("takes the reason of the first blocking condition and names it", () => {
    const r = summarize([
      { type: "CAReady", status: "True", reason: "CAGenerated", message: "" },
      { type: "ConfigApplied", status: "False", reason: "ConfigMapNotFound", message: "ConfigMap x does not exist" },
      { type: "Verified", status: "False", reason: "Unreachable", message: "down" },
    ]);
    expect(r).to.include({ status: "False", reason: "ConfigMapNotFound", message: "ConfigApplied: ConfigMap x does not exist" });
  });
  it("owns up to password rules in force when Ready", () => {
    const ok = [{ type: "CAReady", status: "True", reason: "CAGenerated", message: "" }] as const;
    expect(summarize([...ok], 0).message).to.equal("the server requires client certificates and serves the current certificate");
    expect(summarize([...ok], 2)).to.include({
      status: "True",
      reason: "Secured",
      message: "the server requires TLS, and client certificates except for 2 password rules (status.passwordAccess), and serves the current certificate",
    });
  });
  it("does not block on disabled verification", () => {
    expect(summarize([{ type: "Verified", status: "Unknown", reason: "VerificationDisabled", message: "" }]).status).to.equal("True");
  });
  it("with reload.strategy None, leaves it to verification: Ready once the server serves the current certificate, not before", () => {
    const manual = { type: "Reloaded", status: "Unknown", reason: "ManualReloadRequired", message: "reload it yourself" } as const;
    expect(summarize([manual, { type: "Verified", status: "True", reason: "ServingCurrentCertificate", message: "" }]).status).to.equal("True");
    expect(summarize([manual, { type: "Verified", status: "False", reason: "ServingPreviousCertificate", message: "old serial" }])).to.include({ status: "False", reason: "ServingPreviousCertificate" });
    // Only Unknown is the user's choice; a False Reloaded (a failed reload) still blocks.
    expect(summarize([{ ...manual, status: "False" }]).status).to.equal("False");
  });
});

describe("planServerConfig", () => {
  const sdb = { apiVersion: "mtls.imaging.dev/v1alpha1", kind: "SecureDatabase", metadata: { name: "db", namespace: "ns" }, spec: { host: "db.example", postgres: { configMapName: "pg" } } } as SecureDatabase;
  const spec = resolveSecureDatabase(sdb);
  const data = { "postgresql.conf": "port = 5432\n", "pg_hba.conf": "local all all peer\n", other: "kept" };

  it("appends the conf block, prepends the hba block, keeps every other key and byte, and is idempotent", () => {
    const plan = planServerConfig(data, "pg", spec);
    if (!plan.ok) throw new Error(plan.problem.message);
    expect(plan.changed).to.equal(true);
    expect(plan.data.other).to.equal("kept");
    expect(plan.data["postgresql.conf"]!.startsWith("port = 5432\n")).to.equal(true);
    expect(plan.data["postgresql.conf"]).to.contain("ssl = on").and.to.contain("/etc/postgresql/tls/tls.crt");
    expect(plan.data["pg_hba.conf"]!.trimEnd().endsWith("local all all peer")).to.equal(true);
    const again = planServerConfig(plan.data, "pg", spec);
    expect(again.ok && again.changed).to.equal(false);
    const cleaned = planConfigCleanup(plan.data, ["postgresql.conf", "pg_hba.conf"]);
    expect(cleaned.ok && cleaned.data).to.deep.equal(data);
  });

  it("names missing keys", () => {
    const plan = planServerConfig({ "postgresql.conf": "" }, "pg", spec);
    expect(plan.ok).to.equal(false);
    if (!plan.ok) expect(plan.problem).to.include({ reason: "ConfigKeyMissing" }).and.to.have.property("message").that.contains('"pg_hba.conf"');
  });

  it("refuses to guess at a hand-broken block", () => {
    const broken = { "postgresql.conf": "# BEGIN mtls.imaging.dev managed block (do not edit)\nssl = on\n", "pg_hba.conf": "" };
    const plan = planServerConfig(broken, "pg", spec);
    expect(plan.ok).to.equal(false);
    if (!plan.ok) expect(plan.problem.reason).to.equal("ManagedBlockCorrupt");
    expect(planConfigCleanup(broken, ["postgresql.conf"]).ok).to.equal(false);
  });
});
