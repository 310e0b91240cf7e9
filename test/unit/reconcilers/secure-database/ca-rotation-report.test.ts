import type { CARotationStatus } from "../../../../src/api/types";
import { generateCA, type CertificateAuthority } from "../../../../src/pki";
import type { RotationStep } from "../../../../src/reconcilers/secure-database/ca-rotation-plan";
import { rotationReport, type RotationState } from "../../../../src/reconcilers/secure-database/ca-rotation-step";
import { at, expectSubset, NOW } from "./fixtures";

describe("rotationReport (step 1b: status.caRotation and CARotating after the rotation's step)", () => {
  let old: CertificateAuthority;
  let next: CertificateAuthority;
  let overlap: RotationState;
  before(async () => {
    old = await generateCA({ commonName: "old CA", duration: 3650 * 24 * 3600_000, now: at(-3_600_000) });
    next = await generateCA({ commonName: "new CA", duration: 3650 * 24 * 3600_000, now: at(-60_000) });
    overlap = { phase: "Overlap", signing: old, next, trusted: [], acceptedIssuers: [] };
  });
  const started = at(-600_000).toISOString();
  const recorded = (o: Partial<CARotationStatus> = {}): CARotationStatus => ({
    phase: "Overlap",
    startedTime: started,
    phaseTime: started,
    ...o,
  });
  const waiting: RotationStep = { action: "none", message: "Overlap: waiting for the server", requeueAt: at(2000) };

  type Row = {
    name: string; recorded: () => CARotationStatus | undefined; step: RotationStep; phase: "Overlap" | "Reissuing"; want: () => unknown,
  };
  const rows: Row[] = [
    {
      name: "a phase that waits: its times kept, the step's message and requeue",
      recorded: () => recorded(),
      step: waiting,
      phase: "Overlap",
      want: () => ({
        status: {
          phase: "Overlap",
          startedTime: started,
          phaseTime: started,
          oldCASerial: old.facts.serialNumber,
          newCASerial: next.facts.serialNumber,
          message: waiting.message,
        },
        condition: { type: "CARotating", status: "True", reason: "Overlap", message: waiting.message },
        requeueAt: at(2000),
      }),
    },
    {
      name: "ready and waiting out the propagation delay: readyTime recorded",
      recorded: () => recorded(),
      step: { action: "none", message: "Overlap: waiting until …", readySince: at(-1000), requeueAt: at(119_000) },
      phase: "Overlap",
      want: () => ({ status: { readyTime: at(-1000).toISOString() }, requeueAt: at(119_000) }),
    },
    {
      name: "a rotation first seen in this pass: started now",
      recorded: () => undefined,
      step: waiting,
      phase: "Overlap",
      want: () => ({ status: { startedTime: NOW.toISOString(), phaseTime: NOW.toISOString() } }),
    },
    {
      name: "moved on to Reissuing: phaseTime now, no readyTime, look again at once",
      recorded: () => recorded({ readyTime: at(-130_000).toISOString() }),
      step: { action: "promote", message: "every consumer trusts the new CA", readySince: at(-130_000) },
      phase: "Reissuing",
      want: () => ({
        status: { phase: "Reissuing", startedTime: started, phaseTime: NOW.toISOString(), readyTime: undefined },
        condition: { status: "True", reason: "Reissuing" },
        requeueAt: NOW,
      }),
    },
  ];
  for (const row of rows) it(row.name, () => expectSubset(rotationReport(row.recorded(), overlap, row.step, row.phase, NOW), row.want()));

  it("a rotation that completed: Idle, CARotating False", () => {
    const finishing: RotationState = { phase: "Finishing", signing: next, trusted: [], acceptedIssuers: [] };
    const step: RotationStep = { action: "complete", message: "rotation complete" };
    expectSubset(rotationReport(recorded({ phase: "Finishing", oldCASerial: "0a" }), finishing, step, "Idle", NOW), {
      status: { phase: "Idle", oldCASerial: "0a", newCASerial: next.facts.serialNumber },
      condition: { type: "CARotating", status: "False", reason: "Idle", message: "rotation complete" },
      requeueAt: NOW,
    });
  });
});
