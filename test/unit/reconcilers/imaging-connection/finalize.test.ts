import { expect } from "chai";
import { FINALIZER } from "../../../../src/api/types";
import type { ImagingConnectionObject } from "../../../../src/reconcilers/context";
import { planFinalize } from "../../../../src/reconcilers/imaging-connection/finalize";
import { candidate, deleted, deployment, imagingConnection, patched, view } from "./fixtures";

const deleting = (imc: ImagingConnectionObject, finalizers = [FINALIZER]): ImagingConnectionObject => deleted(imc, finalizers);

describe("planFinalize (a deleted connection lets go once no workload mounts its Secret)", () => {
  const app = imagingConnection("app", { workloads: [{ kind: "Deployment", name: "console" }, { kind: "Deployment", name: "viewer" }] });
  const mounting = (name: string, imc = app) => patched(
    deployment(name),
    view(name, deployment(name), [candidate(imc, name)]).admission.plan,
  );
  const rows: { name: string; imc: ImagingConnectionObject; workloads: Parameters<typeof planFinalize>[0]["workloads"]; plan: object }[] = [
    { name: "not our finalizer: nothing to do", imc: deleting(app, ["other"]), workloads: [mounting("console")], plan: { action: "none" } },
    {
      name: "a workload still mounts its Secret: look again in 2 s",
      imc: deleting(app),
      workloads: [deployment("console"), mounting("viewer")],
      plan: { action: "wait", requeueAfterMs: 2000 },
    },
    {
      name: "every workload let go: release",
      imc: deleting(app),
      workloads: [deployment("console"), deployment("viewer")],
      plan: { action: "release" },
    },
    { name: "its workloads are gone: release", imc: deleting(app), workloads: [undefined, undefined], plan: { action: "release" } },
    {
      name: "a workload mounts a Secret of that volume name but another Secret: release",
      imc: deleting(imagingConnection("app", { secretName: "renamed-tls", workloads: [{ kind: "Deployment", name: "console" }] })),
      workloads: [mounting("console")],
      plan: { action: "release" },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(planFinalize({ imc: row.imc, workloads: row.workloads })).to.deep.equal(row.plan);
    });
  }
});
