/** Manifests the tests apply, as a user would write them. */

/** An ImagingConnection for `user` to the SecureDatabase `db` of its namespace; `extra` adds spec lines (2-space indented). */
export function imagingConnectionYaml(ns: string, name: string, user: string, extra = ""): string {
  return `apiVersion: mtls.imaging.dev/v1alpha1
kind: ImagingConnection
metadata: { name: ${name}, namespace: ${ns} }
spec:
  databaseRef: { name: db }
  user: ${user}
${extra}`;
}
