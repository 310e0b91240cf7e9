import { API_VERSION, type ImagingConnection, type SecureDatabase } from "../../../src/api/types";

/** A minimal valid SecureDatabase, with spec fields overridden by the test. */
export function sdb(spec: Partial<SecureDatabase["spec"]> = {}, name = "imaging-db", namespace = "cast"): SecureDatabase {
  return {
    apiVersion: API_VERSION,
    kind: "SecureDatabase",
    metadata: { name, namespace },
    spec: { host: "db.example.com", postgres: { configMapName: "pg-config" }, ...spec },
  };
}

/** A minimal valid ImagingConnection, with spec fields overridden by the test. */
export function imc(spec: Partial<ImagingConnection["spec"]> = {}, name = "analysis", namespace = "cast"): ImagingConnection {
  return {
    apiVersion: API_VERSION,
    kind: "ImagingConnection",
    metadata: { name, namespace },
    spec: { databaseRef: { name: "imaging-db" }, user: "operator", ...spec },
  };
}
