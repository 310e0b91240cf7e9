import { expect } from "chai";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_LABEL } from "../../../../src/api/types";
import type { ConfigMapObject, ImagingConnectionObject } from "../../../../src/reconcilers/context";
import { CAST_INI_OWNER, planWorkload, type WorkloadObserved } from "../../../../src/reconcilers/imaging-connection/workload-reconciler";
import type { WorkloadView } from "../../../../src/reconcilers/imaging-connection/workload-view";
import { candidate, deployment, imagingConnection, NS, patched, view } from "./fixtures";

const INI_CM = "cast-mtls-ini-deployment-console";
const app = imagingConnection("app", { workloads: [{ kind: "Deployment", name: "console" }] });
/** The same connection once its status says the reconciler had patched the console before. */
const appPatchedBefore = imagingConnection("app", { workloads: [{ kind: "Deployment", name: "console" }] }, {
  status: { workloads: [{ kind: "Deployment", name: "console", state: "Patched" }] },
});

const admitting = (w = deployment("console")) => view("console", w, [candidate(app, "console")]);
const planOfApp = () => admitting().admission.plan;
const iniConfigMap = (ini: string, owner = CAST_INI_OWNER): ConfigMapObject => ({
  metadata: { name: INI_CM, namespace: NS, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [OWNER_LABEL]: owner } },
  data: { "cast-connections.ini": ini },
});

function observed(v: WorkloadView, extra: { ini?: ConfigMapObject; connections?: ImagingConnectionObject[] } = {}): WorkloadObserved {
  return {
    view: { ...v, workload: v.workload! },
    ...(extra.ini ? { iniConfigMap: extra.ini } : {}),
    connections: new Map((extra.connections ?? []).map((c) => [c.metadata.name, c])),
  };
}

describe("planWorkload (the workload reconciler: .ini, pod template, events)", () => {
  const rows: { name: string; observed: () => WorkloadObserved; plan: () => object }[] = [
    {
      name: "a first connection: the .ini, then the template, and a WorkloadPatched event",
      observed: () => observed(admitting(), { connections: [app] }),
      plan: () => ({
        ini: admitting().admission.ini,
        deleteIni: false,
        patch: {
          template: planOfApp(),
          summary: `mounts ImagingConnection app and the CAST .ini (ConfigMap ${INI_CM})`,
          events: [
            {
              connection: app,
              event: {
                type: "Normal",
                reason: "WorkloadPatched",
                message: "Deployment console now mounts Secret app-client-tls and the CAST .ini",
              },
            },
          ],
        },
      }),
    },
    {
      name: "everything in place: nothing to do",
      observed: () => observed(
        admitting(patched(deployment("console"), planOfApp())),
        { ini: iniConfigMap(admitting().admission.ini), connections: [app] },
      ),
      plan: () => ({ deleteIni: false }),
    },
    {
      name: "the .ini edited by hand: only the .ini is written back",
      observed: () => observed(
        admitting(patched(deployment("console"), planOfApp())),
        { ini: iniConfigMap("[edited]\n"), connections: [app] },
      ),
      plan: () => ({ ini: admitting().admission.ini, deleteIni: false }),
    },
    {
      name: "a template replaced by a Helm upgrade: mounts put back with a MountsRestored warning",
      observed: () => observed(admitting(), { ini: iniConfigMap(admitting().admission.ini), connections: [appPatchedBefore] }),
      plan: () => ({
        deleteIni: false,
        patch: {
          template: planOfApp(),
          summary: `mounts ImagingConnection app and the CAST .ini (ConfigMap ${INI_CM})`,
          events: [
            {
              connection: appPatchedBefore,
              event: {
                type: "Warning",
                reason: "MountsRestored",
                message:
                  "Deployment console had lost this connection's volume and mounts (its pod template was replaced, " +
                  "e.g. by a Helm upgrade or a GitOps sync); put them back",
              },
            },
          ],
        },
      }),
    },
    {
      name: "an admitted connection gone from the cache: patched, no event for it",
      observed: () => observed(admitting()),
      plan: () => ({
        ini: admitting().admission.ini,
        deleteIni: false,
        patch: { template: planOfApp(), summary: `mounts ImagingConnection app and the CAST .ini (ConfigMap ${INI_CM})`, events: [] },
      }),
    },
    {
      name: "the last connection left: everything of ours taken out, then the .ini deleted",
      observed: () => observed(
        view("console", patched(deployment("console"), planOfApp()), []),
        { ini: iniConfigMap(admitting().admission.ini) },
      ),
      plan: () => ({
        deleteIni: true,
        patch: { template: { mounts: [], env: [], annotations: {} }, summary: "no longer mounts any ImagingConnection", events: [] },
      }),
    },
    {
      name: "no connection and an .ini ConfigMap of someone else's: left alone",
      observed: () => observed(view("console", deployment("console"), []), { ini: iniConfigMap("[x]\n", "someone") }),
      plan: () => ({ deleteIni: false }),
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(planWorkload(row.observed())).to.deep.equal(row.plan());
    });
  }
});
