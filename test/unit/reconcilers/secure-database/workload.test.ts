import { expect } from "chai";
import type { Workload } from "../../../../src/imaging/pod-template";
import { planWorkloadMount } from "../../../../src/reconcilers/secure-database/workload";
import { expectSubset, resolved } from "./fixtures";

const withRef = resolved({ workloadRef: { kind: "StatefulSet", name: "pg" } });
const statefulSet = (o: { containers?: string[]; annotations?: Record<string, string> } = {}): Workload => ({
  metadata: { name: "pg", namespace: "cast", annotations: { "mtls.imaging.dev/secure-database": "db" } },
  spec: {
    template: {
      ...(o.annotations ? { metadata: { annotations: o.annotations } } : {}),
      spec: { containers: (o.containers ?? ["postgres"]).map((name) => ({ name })) },
    },
  },
});

describe("planWorkloadMount (step 4: the server Secret in the database workload)", () => {
  const rows: { name: string; workload: Workload | undefined; spec: ReturnType<typeof resolved>; want: unknown }[] = [
    {
      name: "no workloadRef: nothing to do, no condition",
      workload: undefined,
      spec: resolved(),
      want: { conditions: [], patched: false, events: [] },
    },
    {
      name: "the workload does not exist: WorkloadNotFound, with an event",
      workload: undefined,
      spec: withRef,
      want: {
        conditions: [
          {
            type: "WorkloadPatched",
            status: "False",
            reason: "WorkloadNotFound",
            message: "StatefulSet pg (spec.workloadRef) does not exist in namespace cast",
          },
        ],
        patched: false,
        events: [{ type: "Warning", reason: "WorkloadNotFound" }],
      },
    },
    {
      name: "the named container is not there: ContainerNotFound",
      workload: statefulSet({ containers: ["sidecar"] }),
      spec: resolved({ workloadRef: { kind: "StatefulSet", name: "pg", container: "postgres" } }),
      want: {
        conditions: [{ reason: "ContainerNotFound", message: 'StatefulSet pg has no container "postgres" (it has: sidecar)' }],
        events: [],
      },
    },
    {
      name: "not mounted yet: apply the mount, WorkloadPatched event",
      workload: statefulSet(),
      spec: withRef,
      want: {
        conditions: [
          {
            type: "WorkloadPatched",
            status: "True",
            reason: "Mounted",
            message: "StatefulSet pg mounts the server Secret at /etc/postgresql/tls",
          },
        ],
        patched: true,
        events: [
          {
            type: "Normal",
            reason: "WorkloadPatched",
            message: "mounted Secret imaging-db-server-tls at /etc/postgresql/tls in container postgres of StatefulSet pg",
          },
        ],
      },
    },
  ];
  for (const row of rows) it(row.name, () => expectSubset(planWorkloadMount(row.workload, row.spec, "cast", "hash-1", "db"), row.want));

  it("the apply it plans is what the workload then holds: a second pass plans nothing, and reads the last restart", () => {
    const first = planWorkloadMount(statefulSet(), withRef, "cast", "hash-1", "db");
    const patch = first.apply as Workload;
    const applied = statefulSet({ annotations: { "mtls.imaging.dev/restarted-at": "2026-11-23T11:00:00.000Z" } });
    applied.spec!.template!.spec = patch.spec!.template!.spec;
    const second = planWorkloadMount(applied, withRef, "cast", "hash-1", "db");
    expect(second.patched).to.equal(false);
    expect(second.apply).to.equal(undefined);
    expect(second.events).to.deep.equal([]);
    expect(second.lastRestartAt).to.deep.equal(new Date("2026-11-23T11:00:00.000Z"));
  });

  it("a volume of that name that is not ours: VolumeConflict, nothing applied", () => {
    const workload = statefulSet();
    workload.spec!.template!.spec!.volumes = [{ name: "mtls-server-tls", secret: { secretName: "theirs" } }];
    const plan = planWorkloadMount(workload, withRef, "cast", "hash-1", "db");
    expectSubset(plan, { conditions: [{ status: "False", reason: "VolumeConflict" }], patched: false, apply: undefined });
  });
});
