/**
 * Pod templates of CAST Imaging's Helm chart 3.6.x as the unit tests meet them, built from the facts in
 * shared/design/cast-imaging.md ("CAST Imaging's Helm chart") and test/fixtures/cast-imaging-chart. Plain objects,
 * fresh on every call so a test may mutate its copy.
 */
import type { Container, Workload } from "../../../src/imaging/pod-template";

export const RELEASE = "castimaging-v3";
export const CHART_SECRET = "ssl-certs";
export const FILES_DIR = "/etc/ssl/certs-postgres";
export const INI_PATH = `${FILES_DIR}/sslconfig.ini`;

type Volume = NonNullable<NonNullable<NonNullable<Workload["spec"]>["template"]>["spec"]>["volumes"] extends (infer V)[] | undefined ? V : never;

const sh = (...lines: string[]): string[] => ["/bin/sh", "-c", lines.join("\n") + "\n"];

/** The chart's copy lines (viewer-etl's init container does not chmod). */
const copyLines = (chmod: boolean): string[] => [
  'echo "Copying the PostgreSQL client files."',
  "cp /tmp/certs/* /etc/ssl/certs-postgres",
  ...(chmod ? ["chmod 0600 /etc/ssl/certs-postgres/client-key.pem"] : []),
  "ls -l /etc/ssl/certs-postgres",
];

const sslInitMounts = () => [
  { name: "ssl-certs", mountPath: "/tmp/certs", readOnly: true },
  { name: "postgres-ssl-files", mountPath: FILES_DIR },
];
const sslMainMount = () => ({ name: "postgres-ssl-files", mountPath: FILES_DIR, readOnly: true });
const sslEnv = () => ({ name: "CASTCONNECTIONEXTRAPARAMETERS", value: INI_PATH });

/** The chart's two volumes; defaultMode is in the manifest though the operator's Workload type does not read it. */
export function sslVolumes(): Volume[] {
  const secret = { name: "ssl-certs", secret: { secretName: CHART_SECRET, defaultMode: 0o644 } };
  const files = { name: "postgres-ssl-files", emptyDir: {} };
  return [secret, files];
}

interface Options {
  /** --set EnablePostgresSSL=true (default: on). */
  ssl?: boolean;
  release?: string;
}

function workload(
  kind: "Deployment" | "StatefulSet",
  name: string,
  component: string,
  release: string,
  pod: { initContainers?: Container[]; containers: Container[]; volumes?: Volume[] },
): Workload {
  return {
    apiVersion: "apps/v1",
    kind,
    metadata: {
      name,
      namespace: RELEASE,
      generation: 1,
      labels: { "imaging.service": component, "app.kubernetes.io/managed-by": "Helm" },
      annotations: { "meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": RELEASE },
    },
    spec: { replicas: 1, template: { metadata: {}, spec: pod } },
  };
}

/** Deployment console-control-panel: its copying init container then runs psql as operator on postgres and keycloak. */
export function controlPanel({ ssl = true, release = RELEASE }: Options = {}): Workload {
  return workload("Deployment", "console-control-panel", "console-control-panel", release, {
    initContainers: [
      { name: "wait-for-postgres", command: sh("until pg_isready -h console-postgres -p 2285; do echo waiting; sleep 2; done") },
      {
        name: "postgres-scripts-ssl-setup",
        command: sh(
          ...(ssl ? copyLines(true) : []),
          'echo "Context URL updates."',
          "psql -h console-postgres -p 2285 -U operator -d postgres -f /home/imaging/sql/contexturl-controlpanel-update-script.sql",
          "psql -h console-postgres -p 2285 -U operator -d keycloak -f /home/imaging/sql/contexturl-keycloak-update-script.sql",
        ),
        env: [{ name: "PGPASSWORD" }],
        volumeMounts: [
          {
            name: "contexturl-controlpanel-update-script",
            mountPath: "/home/imaging/sql/contexturl-controlpanel-update-script.sql",
            subPath: "contexturl-controlpanel-update-script.sql",
          },
          ...(ssl ? sslInitMounts() : []),
        ],
      },
    ],
    containers: [
      {
        name: "console-control-panel",
        env: [{ name: "DB_HOST", value: "console-postgres" }, { name: "DB_PORT", value: "2285" }, ...(ssl ? [sslEnv()] : [])],
        volumeMounts: [{ name: "audit-trails", mountPath: "/home/imaging/audit" }, ...(ssl ? [sslMainMount()] : [])],
      },
    ],
    volumes: [
      { name: "audit-trails", emptyDir: {} },
      { name: "contexturl-controlpanel-update-script", configMap: { name: "contexturl-controlpanel-update-script" } },
      ...(ssl ? sslVolumes() : []),
    ],
  });
}

/**
 * StatefulSet console-analysis-node-core (label console-analysis-node): init-folders-services-healthcheck copies;
 * the later postgres-upgrade runs psql without mounting the copied files.
 */
export function analysisNode({ ssl = true, release = RELEASE }: Options = {}): Workload {
  return workload("StatefulSet", "console-analysis-node-core", "console-analysis-node", release, {
    initContainers: [
      {
        name: "init-folders-services-healthcheck",
        command: sh(
          "mkdir -p /home/CAST/common-data /home/CAST/delivery",
          ...(ssl ? copyLines(true) : []),
          "until curl -s --fail --max-time 5 http://console-control-panel:8098/actuator/health | grep -q UP; do sleep 2; done",
        ),
        volumeMounts: [
          { name: "castdir", mountPath: "/usr/share/CAST" },
          { name: "shared-datadir", mountPath: "/home/CAST" },
          ...(ssl ? sslInitMounts() : []),
        ],
      },
      {
        name: "postgres-upgrade",
        command: sh(
          'PG_HOST="console-postgres"',
          'PG_PORT="2285"',
          'PGPASSWORD="$OPERATOR_PASSWORD"',
          'psql -h "$PG_HOST" -p "$PG_PORT" -U operator -d postgres -f /home/imaging/sql/analysisnode-upgrade-script.sql',
        ),
        volumeMounts: [
          {
            name: "analysisnode-upgrade-script",
            mountPath: "/home/imaging/sql/analysisnode-upgrade-script.sql",
            subPath: "analysisnode-upgrade-script.sql",
          },
        ],
      },
    ],
    containers: [
      {
        name: "console-analysis-node",
        env: [{ name: "TMPDIR", value: "/tmp" }, ...(ssl ? [sslEnv()] : [])],
        volumeMounts: [
          { name: "castdir", mountPath: "/usr/share/CAST" },
          { name: "shared-datadir", mountPath: "/home/CAST" },
          ...(ssl ? [sslMainMount()] : []),
        ],
      },
    ],
    volumes: [
      { name: "castdir", emptyDir: {} },
      { name: "shared-datadir", emptyDir: {} },
      { name: "analysisnode-upgrade-script", configMap: { name: "analysisnode-upgrade-script" } },
      ...(ssl ? sslVolumes() : []),
    ],
  });
}

/** Deployment viewer-etl: copies without chmod, runs no psql; reaches PostgreSQL through the .ini only. */
export function viewerEtl({ ssl = true, release = RELEASE }: Options = {}): Workload {
  return workload("Deployment", "viewer-etl", "viewer-etl", release, {
    initContainers: [
      {
        name: "neo4j-and-control-panel-healthcheck",
        command: sh(...(ssl ? copyLines(false) : []), "until curl -s --fail http://viewer-neo4j:7474 > /dev/null 2>&1; do sleep 2; done"),
        ...(ssl ? { volumeMounts: sslInitMounts() } : {}),
      },
    ],
    containers: [
      {
        name: "viewer-etl",
        command: ["sh", "-c", "/opt/imaging/imaging-etl/config/init.sh"],
        env: [{ name: "TZ", value: "UTC" }, ...(ssl ? [sslEnv()] : [])],
        volumeMounts: [{ name: "logdir", mountPath: "/opt/imaging/imaging-etl/logs" }, ...(ssl ? [sslMainMount()] : [])],
      },
    ],
    volumes: [{ name: "logdir", emptyDir: {} }, ...(ssl ? sslVolumes() : [])],
  });
}

/** A chart component without the client TLS contract (Keycloak, console-service, viewer-server, …). */
export function plainComponent(name: string, { release = RELEASE, env = [] as { name: string; value?: string }[] } = {}): Workload {
  return workload("Deployment", name, name, release, { containers: [{ name, env }] });
}
