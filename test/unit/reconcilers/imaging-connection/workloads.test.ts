import { expect } from "chai";
import type { ConnectionWorkload } from "../../../../src/api/types";
import { planWorkloads, type WorkloadsObserved } from "../../../../src/reconcilers/imaging-connection/workloads";
import type { WorkloadView } from "../../../../src/reconcilers/imaging-connection/workload-view";
import { candidate, deployment, imagingConnection, NS, patched, resolved, view } from "./fixtures";

const console_: ConnectionWorkload = { kind: "Deployment", name: "console" };
const INI = "/etc/cast-imaging/mtls-ini/cast-connections.ini";

function observed(
  workloads: ConnectionWorkload[],
  views: (imc: ReturnType<typeof imagingConnection>) => WorkloadView[],
  extra: Partial<WorkloadsObserved> = {},
) {
  const imc = imagingConnection("app", { workloads });
  const spec = resolved(imc);
  const targets = views(imc).map((v, i) => ({
    target: { kind: v.kind, name: v.name, workload: v.workload, listed: true, delivery: { delivery: "Mount" as const }, entry: spec.workloads[i]! },
    view: v,
  }));
  return { connection: "app", namespace: NS, spec, targets, ...extra };
}

/** The console Deployment as the workload reconciler left it: carrying exactly the plan that admits `app`. */
function patchedConsole(imc: ReturnType<typeof imagingConnection>): WorkloadView {
  const bare = view("console", deployment("console"), [candidate(imc, "console")]);
  return view("console", patched(deployment("console"), bare.admission.plan), [candidate(imc, "console")]);
}

describe("planWorkloads (how far the workload reconciler got, per listed workload)", () => {
  const rows: {
    name: string;
    observed: () => WorkloadsObserved;
    statuses: object[];
    condition: object;
    events: object[];
  }[] = [
    {
      name: "no workloads listed: True, NoWorkloads",
      observed: () => observed([], () => []),
      statuses: [],
      condition: {
        type: "WorkloadsPatched",
        status: "True",
        reason: "NoWorkloads",
        message: "spec.workloads is empty: mount the client Secret yourself (status.declaration gives the file names)",
      },
      events: [],
    },
    {
      name: "patched: True, naming it",
      observed: () => observed([console_], (imc) => [patchedConsole(imc)]),
      statuses: [
        {
          kind: "Deployment",
          name: "console",
          delivery: "Mount",
          mountPath: "/etc/cast-imaging/mtls/app",
          state: "Patched",
          message: `mounts Secret app-client-tls at /etc/cast-imaging/mtls/app and the CAST .ini at ${INI}`,
        },
      ],
      condition: {
        type: "WorkloadsPatched",
        status: "True",
        reason: "Patched",
        message: "Deployment console mounts the client Secret and the CAST .ini",
      },
      events: [],
    },
    {
      name: "admitted, not patched yet: Pending, no event",
      observed: () => observed([console_], (imc) => [view("console", deployment("console"), [candidate(imc, "console")])]),
      statuses: [
        {
          kind: "Deployment",
          name: "console",
          delivery: "Mount",
          mountPath: "/etc/cast-imaging/mtls/app",
          state: "Pending",
          message: "waiting for the operator to patch the pod template",
        },
      ],
      condition: {
        type: "WorkloadsPatched",
        status: "False",
        reason: "Pending",
        message: "Deployment console: waiting for the operator to patch the pod template",
      },
      events: [],
    },
    {
      name: "the workload does not exist: NotFound, a Warning",
      observed: () => observed([console_], () => [view("console", undefined, [])]),
      statuses: [
        {
          kind: "Deployment",
          name: "console",
          delivery: "Mount",
          mountPath: "/etc/cast-imaging/mtls/app",
          state: "NotFound",
          message: `Deployment console does not exist in namespace ${NS}`,
        },
      ],
      condition: {
        type: "WorkloadsPatched",
        status: "False",
        reason: "WorkloadNotFound",
        message: `Deployment console: Deployment console does not exist in namespace ${NS}`,
      },
      events: [{ type: "Warning", reason: "WorkloadNotFound", message: `Deployment console does not exist in namespace ${NS}` }],
    },
    {
      name: "refused for a missing container: NotFound with the refusal's words",
      observed: () => observed(
        [{ ...console_, containers: ["api"] }],
        (imc) => [view("console", deployment("console"), [candidate(imc, "console")])],
      ),
      statuses: [
        {
          kind: "Deployment",
          name: "console",
          delivery: "Mount",
          mountPath: "/etc/cast-imaging/mtls/app",
          state: "NotFound",
          message: 'ImagingConnection app: Deployment console has no container "api"; its containers are "app"',
        },
      ],
      condition: {
        type: "WorkloadsPatched",
        status: "False",
        reason: "ContainerNotFound",
        message: 'Deployment console: ImagingConnection app: Deployment console has no container "api"; its containers are "app"',
      },
      events: [
        {
          type: "Warning",
          reason: "ContainerNotFound",
          message: 'ImagingConnection app: Deployment console has no container "api"; its containers are "app"',
        },
      ],
    },
    {
      name: "the connection does not resolve: Pending with its reason, no event (the connection said why)",
      observed: () =>
        observed(
          [console_],
          () => [view("console", deployment("console"), [])],
          { unmountedFor: { reason: "DatabaseNotFound", message: "no database" } },
        ),
      statuses: [
        {
          kind: "Deployment",
          name: "console",
          delivery: "Mount",
          mountPath: "/etc/cast-imaging/mtls/app",
          state: "Pending",
          message: "not mounted while the connection has no certificate (DatabaseNotFound); mounted again once it has",
        },
      ],
      condition: {
        type: "WorkloadsPatched",
        status: "False",
        reason: "DatabaseNotFound",
        message: "Deployment console: not mounted while the connection has no certificate (DatabaseNotFound); mounted again once it has",
      },
      events: [],
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(planWorkloads(row.observed())).to.deep.equal({ statuses: row.statuses, condition: row.condition, events: row.events });
    });
  }
});
