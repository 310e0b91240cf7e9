/**
 * Chaos (issue 8, item 4), CA rotation: PostgreSQL goes down in the middle of a CA rotation, stays down for 25 s, and
 * comes back on the same data directory and port. The operator must wait for what it cannot verify (never promote a
 * new CA, never drop the old one from trust), say so in the SecureDatabase's conditions and events, retry with a
 * backoff rather than in a loop, keep every CA key, keep running, and finish the rotation once the server is back.
 *
 * PostgreSQL is stopped as soon as the rotation is in Overlap, before the server has loaded the new trust bundle (the
 * "kubelet" lays server files down 2 s late), so the rotation is waiting for the server to accept a client
 * certificate of the new CA when the server goes. The setup and the counting of the operator's connections are
 * shared with the server rotation scenario (test/support/postgres-outage.ts).
 *
 * What the runs showed (figures printed by the test): the rotation recovers (Idle about 8 s after the server is back,
 * psql logs in) but fails on three counts, left asserted as operator bugs: while the server is down nothing says so
 * (Ready and Verified stay True from a verification cached for spec.verification.interval, no event; the Overlap
 * probe's ECONNREFUSED is dropped), the rotation's fixed 2 s requeue probes the server every 1-2 s with no backoff,
 * and Idle ("CA ... alone is trusted") is reached about 3 s before the server stops accepting a client certificate of
 * the retired CA (Finishing completes on a reload issued before the kubelet laid the bundle down).
 */
import { expect } from "chai";
import { X509Certificate } from "node:crypto";
import type { ImagingConnection, SecureDatabase } from "../../src/api/types";
import { secretBytes } from "../../src/kube/secrets";
import { recordUnhandledRejections, sleep } from "../support/chaos";
import { expectPhaseOrder, keyFingerprint } from "../support/invariants";
import { condition, kubectlOk } from "../support/kubectl-json";
import { OUTAGE_MS, RECOVERY_BOUND_MS, softly, usePostgresOutageTestbed } from "../support/postgres-outage";
import { waitFor } from "../support/process";

/** What must have happened after PostgreSQL is back from the CA rotation's outage (the short phases may be missed). */
const RECOVERY_MILESTONES = ["server accepts the new CA (Overlap done)", "new server certificate served", "Verified=True on it", "connection Ready on the new CA", "phase Idle", "SecureDatabase Ready", "psql verify-full login"];

describe("chaos: PostgreSQL is down for 25 s during a CA rotation, then back (real API server, real PostgreSQL)", function () {
  this.timeout(300_000);
  const testbed = usePostgresOutageTestbed("chaos-pgdown-ca");

  it("CA rotation with PostgreSQL stopped in Overlap for 25 s: stays in Overlap with every key, reports the unreachable server, backs off; finishes once the server is back", async () => {
    const {
      ns, pg, operator, ledger, sdbNow, imcNow, secretNow, caSecretNow, keyOf, reconcileCounts, events, eventSince, served,
      psqlWith, clientFiles, ensureUp, reportOutage, expectSettled, endOutage,
    } = testbed();
    await ensureUp();
    const recorder = recordUnhandledRejections();
    const theOperator = operator;
    const problems: string[] = [];
    try {
      const before = await sdbNow();
      const oldCA = before.status!.ca!.serialNumber!;
      const oldServer = before.status!.serverCertificate!.serialNumber!;
      const caKeyBefore = await keyOf("db-ca");
      const oldClient = await clientFiles();
      const metricsBefore = await reconcileCounts();
      ledger.expectRotation(`${ns}/db-ca`);

      // 1. Start the rotation; stop PostgreSQL the moment it is in Overlap.
      const triggeredAt = Date.now();
      await kubectlOk(["annotate", "sdb", "db", "-n", ns, "mtls.imaging.dev/rotate-ca=pgdown-1"]);
      let atHalt: SecureDatabase | undefined;
      await waitFor(
        "the CA rotation to reach Overlap",
        async () => {
          atHalt = await sdbNow();
          return atHalt.status?.caRotation?.phase === "Overlap";
        },
        30_000,
        25,
      );
      const haltAt = Date.now();
      await pg.halt();
      const haltedAt = Date.now();
      const nextKey = await keyOf("db-ca-next");
      console.log(`      Overlap seen ${haltAt - triggeredAt} ms after the rotate-ca annotation; PostgreSQL stopped in ${haltedAt - haltAt} ms (caRotation.readyTime then: ${atHalt?.status?.caRotation?.readyTime ?? "unset"})`);
      // The scenario: the server has never accepted a certificate of the new CA when it goes.
      expect(atHalt?.status?.caRotation?.readyTime, "the server was verified with the new bundle before it was stopped: the scenario did not happen").to.equal(undefined);
      expect(nextKey).to.not.equal("absent");

      // 2. The outage: the rotation must not move, no key may change, the operator keeps running.
      const phasesDuring = new Set<string>();
      let samples = 0;
      while (Date.now() - haltedAt < OUTAGE_MS) {
        const at = `+${Date.now() - haltedAt} ms`;
        const s = await sdbNow();
        samples++;
        const rot = s.status?.caRotation;
        phasesDuring.add(rot?.phase ?? "Idle");
        if (rot?.phase !== "Overlap") problems.push(`phase ${rot?.phase} at ${at}, although the server could not have been verified with the new bundle`);
        if (rot?.readyTime) problems.push(`caRotation.readyTime ${rot.readyTime} recorded at ${at} although the server is down`);
        if (s.status?.ca?.serialNumber !== oldCA) problems.push(`status.ca is serial ${s.status?.ca?.serialNumber}, not the old ${oldCA}, at ${at}: promoted without the server`);
        const [ca, next, previous] = await Promise.all([keyOf("db-ca"), keyOf("db-ca-next"), keyOf("db-ca-previous")]);
        if (ca !== caKeyBefore) problems.push(`db-ca key ${caKeyBefore} → ${ca} at ${at}`);
        if (next !== nextKey) problems.push(`db-ca-next key ${nextKey} → ${next} at ${at}`);
        if (previous !== "absent") problems.push(`db-ca-previous exists at ${at} (a promotion began)`);
        if (!operator.hasSynced()) problems.push(`operator caches not synced at ${at}`);
        await sleep(250);
      }
      const restartAt = Date.now();
      const down = await sdbNow();
      const outage = await reportOutage(haltAt, haltedAt, restartAt, metricsBefore);
      const verified = condition(down, "Verified");
      const rotating = condition(down, "CARotating");
      const ready = condition(down, "Ready");
      console.log(`      reported at the end of the outage: Ready ${ready?.status} ${ready?.reason}; Verified ${verified?.status} ${verified?.reason} "${verified?.message}"; CARotating ${rotating?.status} ${rotating?.reason} "${rotating?.message}"`);
      expect(samples).to.be.greaterThan(20);
      expect([...phasesDuring]).to.deep.equal(["Overlap"]);
      // What the rotation says it waits for.
      expect(rotating).to.include({ status: "True", reason: "Overlap" });
      expect(rotating?.message).to.match(/^Overlap: waiting for the server to accept a client certificate from the new CA/);
      expect(down.status?.caRotation?.message).to.equal(rotating?.message);
      // That the server is unreachable: a condition (with reason Unreachable and the refused connection), Ready not
      // True, and a Warning event, as for a server that goes down outside a rotation (database-faults.test.ts).
      softly(problems, "a condition saying the server is unreachable", () =>
        expect(down.status?.conditions?.filter((c) => c.reason === "Unreachable" || /ECONNREFUSED/.test(c.message)), JSON.stringify(down.status?.conditions?.map((c) => `${c.type}=${c.status} ${c.reason}`))).to.not.be.empty,
      );
      softly(problems, "Ready while the server is down", () => expect(ready?.status, `Ready ${ready?.status} ${ready?.reason}: ${ready?.message}`).to.not.equal("True"));
      // (The operator records an identical event once in 10 min and logs every one: the log says it was recorded now.)
      const warnedEvents = (await events()).filter((e) => e.type === "Warning" && /ECONNREFUSED/.test(e.message));
      softly(problems, "a Warning event naming the refused connection", () => expect(warnedEvents.map((e) => `${e.reason}: ${e.message}`)).to.not.be.empty);
      softly(problems, "a Warning event naming the refused connection recorded during the outage (log)", () => expect(outage.warned.filter((l) => /ECONNREFUSED/.test(l.message))).to.not.be.empty);
      // Retries: bounded, backing off; no reconcile failed; the same operator, running.
      // 3. PostgreSQL back, on the same data directory and port.
      const { backAt, done, mark } = await endOutage(problems, outage, theOperator);
      const phases: string[] = ["Overlap"];
      let last: SecureDatabase | undefined;
      let lastImc: ImagingConnection | undefined;
      let lastLogin = "";
      const recovered = await waitFor(
        "the rotation to finish and everything to work again",
        async () => {
          last = await sdbNow();
          lastImc = await imcNow();
          const s = last.status;
          const phase = s?.caRotation?.phase ?? "Idle";
          if (phases.at(-1) !== phase) phases.push(phase);
          if (s?.caRotation?.readyTime || phase !== "Overlap") mark("server accepts the new CA (Overlap done)");
          if (phase !== "Overlap") mark(`phase ${phase}`);
          const newCA = s?.ca?.serialNumber !== oldCA;
          const serial = s?.serverCertificate?.serialNumber;
          const reissued = newCA && serial !== undefined && serial !== oldServer;
          if (reissued && (await served()) === serial) mark("new server certificate served");
          if (reissued && condition(last, "Verified")?.status === "True" && s?.verification?.servedSerialNumber === serial) mark("Verified=True on it");
          const imcReady = newCA && condition(lastImc, "Ready")?.status === "True" && lastImc.status?.certificate?.issuerFingerprintSHA256 === s?.ca?.fingerprintSHA256;
          if (imcReady) mark("connection Ready on the new CA");
          if (phase === "Idle" && condition(last, "Ready")?.status === "True") mark("SecureDatabase Ready");
          if (phase === "Idle" && imcReady && done["psql verify-full login"] === undefined) {
            const r = await psqlWith(await clientFiles(), "app");
            lastLogin = r.stderr.trim();
            if (r.code === 0 && r.stdout.trim() === "app") mark("psql verify-full login");
          }
          return phase === "Idle" && RECOVERY_MILESTONES.every((m) => done[m] !== undefined);
        },
        RECOVERY_BOUND_MS,
        200,
      ).then(
        () => true,
        (err: Error) => {
          problems.push(`${err.message}; done: ${JSON.stringify(done)}; phases: ${phases.join(" → ")}; last login: ${lastLogin}; caRotation: ${JSON.stringify(last?.status?.caRotation)}; conditions: ${JSON.stringify(last?.status?.conditions)}`);
          return false;
        },
      );
      console.log(`      PostgreSQL back (pg_ctl start) in ${backAt - restartAt} ms; after it answered: ${Object.entries(done).map(([k, v]) => `${k} +${v} ms`).join("; ")}`);

      // 4. The end state: the new CA alone, everything re-issued from it and served, the old CA's key gone.
      if (recovered) {
        const after = last!;
        const newCA = after.status!.ca!.serialNumber!;
        softly(problems, "phases", () => expectPhaseOrder(phases));
        softly(problems, "caRotation", () => expect(after.status?.caRotation).to.include({ phase: "Idle", oldCASerial: oldCA, newCASerial: newCA }));
        const all = await events();
        softly(problems, "rotation events", () => expect(all.map((e) => e.reason)).to.include.members(["CARotationStarted", "CARotationPromoted", "CARotationRetiredOldCA", "CARotationCompleted"]));
        softly(problems, "promotion only after the server was back", () => expect(all.filter((e) => e.reason === "CARotationPromoted").every((e) => eventSince(e, backAt))).to.equal(true));
        for (const gone of ["db-ca-next", "db-ca-previous"]) {
          const left = await caSecretNow(gone);
          softly(problems, `${gone} deleted`, () => expect(left).to.equal(undefined));
        }
        const caData = secretBytes((await caSecretNow("db-ca"))!);
        const server = secretBytes((await secretNow("db-server-tls"))!);
        softly(problems, "server trust bundle", () => expect(server["ca.crt"]!.toString().match(/BEGIN CERTIFICATE/g)).to.have.length(1));
        softly(problems, "server certificate signed by the new CA", () => expect(new X509Certificate(server["tls.crt"]!).verify(new X509Certificate(caData["tls.crt"]!).publicKey)).to.equal(true));
        const servedNow = await served();
        softly(problems, "served certificate", () => expect(servedNow).to.equal(after.status?.serverCertificate?.serialNumber).and.to.not.equal(oldServer));
        softly(problems, "Verified", () => expect(condition(after, "Verified")).to.include({ status: "True", reason: "ServingCurrentCertificate" }));
        softly(problems, "verification.servedSerialNumber", () => expect(after.status?.verification?.servedSerialNumber).to.equal(servedNow));
        // The final client Secret logs in; a client certificate of the retired CA no longer does.
        const login = await psqlWith(await clientFiles(), "app");
        softly(problems, "psql with the final client Secret", () => expect(login.code, login.stderr).to.equal(0));
        // Idle means the server has loaded the bundle without the old CA (ca-rotation.ts): a client certificate of the
        // retired CA must be refused from then on. If it is not, how long until it is.
        const idleAt = backAt + done["phase Idle"]!;
        const oldLogin = await psqlWith(oldClient, "app", await clientFiles());
        const checkedAt = Date.now();
        let refusedAfter: number | undefined;
        await waitFor("the server to refuse the retired CA", async () => (await psqlWith(oldClient, "app", await clientFiles())).code !== 0, 45_000, 250).then(
          () => (refusedAfter = Date.now() - idleAt),
          () => undefined,
        );
        console.log(
          `      a client certificate of the retired CA, ${checkedAt - idleAt} ms after Idle was seen: ${oldLogin.code === 0 ? "still logs in" : `refused (${oldLogin.stderr.trim().split("\n").pop()})`}; ` +
            `refused from ${refusedAfter === undefined ? "never (45 s)" : `${refusedAfter} ms after Idle`}`,
        );
        softly(problems, "psql with the client certificate of the retired CA once the rotation is Idle", () => expect(oldLogin.code, "still logs in: the server has not loaded the bundle without the old CA").to.not.equal(0));
        softly(problems, "the retired CA refused in the end", () => expect(refusedAfter, "never refused").to.not.equal(undefined));
        // Exactly one new CA key, the one announced in db-ca-next; nothing lost.
        const keys = ledger.history(`${ns}/db-ca`);
        softly(problems, "CA keys", () => expect(keys.keys.slice(keys.keys.indexOf(caKeyBefore))).to.deep.equal([caKeyBefore, nextKey]));
        softly(problems, "pending rotations", () => expect(keys.pending).to.equal(0));
        softly(problems, "db-ca key", () => expect(keyFingerprint(caData["tls.key"])).to.equal(nextKey));
      }
      expectSettled(problems, theOperator, recorder);
    } finally {
      recorder.dispose();
      await ensureUp();
    }
  });
});
