import * as k8s from "@kubernetes/client-node";
import { expect } from "chai";
import { resolveSecureDatabase } from "../../../src/api/defaults";
import { managedLabels, type Revocation } from "../../../src/api/types";
import { desiredSecret } from "../../../src/kube/secrets";
import { RestClient } from "../../../src/kube/rest";
import { RESOURCES } from "../../../src/kube/resources";
import { silentLogger } from "../../../src/log";
import { generateCA, issueClientCertificate, type IssuedCertificate } from "../../../src/pki";
import type { OperatorContext, SecretCacheObject } from "../../../src/reconcilers/context";
import { planRevocations } from "../../../src/reconcilers/secure-database/revocations";
import { Informer } from "../../../src/runtime/informer";
import { sdb } from "../api/builders";

/** A context whose Secret cache is filled by hand (the informer is never started: no API server involved). */
function contextWith(secrets: SecretCacheObject[]): OperatorContext {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: "c", server: "https://127.0.0.1:1" }], users: [{ name: "u" }], contexts: [{ name: "x", cluster: "c", user: "u" }], currentContext: "x" });
  const secretCache = new Informer<SecretCacheObject>(new RestClient(kc), { type: RESOURCES.Secret }, silentLogger());
  let rv = 1;
  for (const s of secrets) secretCache.observe({ ...s, metadata: { ...s.metadata, resourceVersion: String(rv++) } });
  return { cache: { secrets: secretCache } } as unknown as OperatorContext;
}

function clientSecret(namespace: string, connection: string, issued: IssuedCertificate): SecretCacheObject {
  return desiredSecret({
    name: `${connection}-client-tls`,
    namespace,
    type: "kubernetes.io/tls",
    labels: managedLabels("ImagingConnection", connection),
    data: { "tls.crt": Buffer.from(issued.chainPem), "tls.key": Buffer.from(issued.keyPkcs8Pem) },
  }) as SecretCacheObject;
}

describe("planRevocations: what the CRL lists", () => {
  let app: IssuedCertificate;
  let other: IssuedCertificate;

  before(async () => {
    const ca = await generateCA({ commonName: "Revocation CA", duration: 24 * 3600_000, now: new Date() });
    app = await issueClientCertificate(ca, { user: "app", duration: 3600_000, now: new Date() });
    other = await issueClientCertificate(ca, { user: "other", duration: 3600_000, now: new Date() });
  });

  const plan = (revocations: Revocation[], ctx: OperatorContext) => planRevocations(ctx, resolveSecureDatabase(sdb({ trust: { revocations } })));

  it("lists serials as given (normalised), deduplicated, sorted", () => {
    const ctx = contextWith([]);
    const r = plan([{ serialNumber: "0B:0A" }, { serialNumber: "0b0a", reason: "superseded" }, { serialNumber: "01" }], ctx);
    expect(r.entries).to.deep.equal([
      { serialNumber: "01", reason: "unspecified", source: "serial" },
      { serialNumber: "0b0a", reason: "unspecified", source: "serial" },
    ]);
    expect(r.unresolved).to.deep.equal([]);
  });

  it("resolves an ImagingConnection to the serial of the certificate in its Secret, in its namespace only", () => {
    const ctx = contextWith([clientSecret("cast", "other", other), clientSecret("elsewhere", "other", app)]);
    const r = plan([{ connectionName: "other", reason: "keyCompromise" }], ctx);
    expect(r.entries).to.deep.equal([{ serialNumber: other.serialNumber, reason: "keyCompromise", source: "ImagingConnection cast/other" }]);
  });

  it("resolves a SHA-256 fingerprint (any spelling) to the serial of the certificate that has it", () => {
    const ctx = contextWith([clientSecret("cast", "app", app), clientSecret("cast", "other", other)]);
    const colons = app.fingerprintSha256.toUpperCase().match(/../g)!.join(":");
    const r = plan([{ sha256Fingerprint: colons, reason: "cessationOfOperation" }], ctx);
    expect(r.entries.map((e) => [e.serialNumber, e.reason])).to.deep.equal([[app.serialNumber, "cessationOfOperation"]]);
    expect(r.entries[0]!.source).to.match(/^fingerprint [0-9a-f]{16}…$/);
  });

  it("reports what designates no certificate it can see, and lists nothing for it", () => {
    const ctx = contextWith([clientSecret("cast", "app", app)]);
    const r = plan([{ connectionName: "ghost" }, { sha256Fingerprint: "ab".repeat(32) }], ctx);
    expect(r.entries).to.deep.equal([]);
    expect(r.unresolved).to.deep.equal([
      "ImagingConnection cast/ghost has no certificate the operator can see",
      `no certificate the operator issued has SHA-256 fingerprint ${"ab".repeat(32)}: list it by serialNumber to put it in the CRL`,
    ]);
  });

  it("ignores Secrets that are not ImagingConnection client Secrets", () => {
    const server = { ...clientSecret("cast", "other", other), metadata: { ...clientSecret("cast", "other", other).metadata, name: "db-server-tls", labels: managedLabels("SecureDatabase", "other") } } as SecretCacheObject;
    const r = plan([{ connectionName: "other" }], contextWith([server]));
    expect(r.entries).to.deep.equal([]);
  });
});
