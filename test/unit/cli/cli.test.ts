import { expect } from "chai";
import { parseCommandLine, UsageError } from "../../../src/cli";

const parseRaw = (argv: string[], env: Record<string, string> = {}, inClusterNamespace?: string) => parseCommandLine(argv, { env, identity: "pod-a_1234", inClusterNamespace });
/** Every run needs a key namespace: these tests give one unless they are about it. */
const parse = (argv: string[], env: Record<string, string> = {}, inClusterNamespace?: string) => parseRaw(argv, { CA_KEY_NAMESPACE: "ops-keys", ...env }, inClusterNamespace);

describe("command line", () => {
  it("defaults to every namespace, 4 workers, mounts under /etc/cast-imaging/, info logs, port 8080 and no leader election", () => {
    expect(parse([])).to.deep.equal({
      help: false,
      kubeconfig: undefined,
      namespaces: undefined,
      concurrency: 4,
      allowedEndpoints: [],
      mountPathPrefix: "/etc/cast-imaging/",
      caKeyNamespace: "ops-keys",
      logLevel: "info",
      healthPort: 8080,
    });
  });

  it("takes what the operator may dial from the flag or ALLOWED_ENDPOINTS, trimmed and without repeats", () => {
    expect(parse(["--allowed-endpoints", "10.0.0.0/8, pg.example.com,10.0.0.0/8"]).allowedEndpoints).to.deep.equal(["10.0.0.0/8", "pg.example.com"]);
    expect(parse([], { ALLOWED_ENDPOINTS: "*.rds.example.com" }).allowedEndpoints).to.deep.equal(["*.rds.example.com"]);
  });

  it("keeps CA keys in --ca-key-namespace, CA_KEY_NAMESPACE, POD_NAMESPACE or the in-cluster namespace, in that order; refuses to run without one", () => {
    expect(parseRaw(["--ca-key-namespace", "keys"], { CA_KEY_NAMESPACE: "env-keys", POD_NAMESPACE: "pod" }).caKeyNamespace).to.equal("keys");
    expect(parseRaw([], { CA_KEY_NAMESPACE: "env-keys", POD_NAMESPACE: "pod" }, "sa").caKeyNamespace).to.equal("env-keys");
    expect(parseRaw([], { POD_NAMESPACE: "pod" }, "sa").caKeyNamespace).to.equal("pod");
    expect(parseRaw([], {}, "sa").caKeyNamespace).to.equal("sa");
    expect(() => parseRaw([])).to.throw(UsageError, /--ca-key-namespace: no namespace for the CA keys: pass --ca-key-namespace or set POD_NAMESPACE/);
    expect(() => parseRaw(["--ca-key-namespace", "Keys_1"])).to.throw(UsageError, /"Keys_1" is not a namespace name/);
    expect(parseRaw(["--help"]).help, "--help runs nothing, so it needs no key namespace").to.equal(true);
  });

  it("takes the mount path prefix from the flag or MOUNT_PATH_PREFIX, as a directory", () => {
    expect(parse(["--mount-path-prefix", "/opt/cast"]).mountPathPrefix).to.equal("/opt/cast/");
    expect(parse([], { MOUNT_PATH_PREFIX: "/etc/certs/" }).mountPathPrefix).to.equal("/etc/certs/");
  });

  it("takes a comma-separated namespace list from the flag or WATCH_NAMESPACE, trimmed and without repeats", () => {
    expect(parse(["--namespace", "cast-imaging, cast-db,cast-imaging"]).namespaces).to.deep.equal(["cast-imaging", "cast-db"]);
    expect(parse([], { WATCH_NAMESPACE: "cast-db" }).namespaces).to.deep.equal(["cast-db"]);
    expect(parse([], { WATCH_NAMESPACE: "" }).namespaces).to.equal(undefined);
    expect(parse(["--namespace", "a"], { WATCH_NAMESPACE: "b" }).namespaces).to.deep.equal(["a"]);
  });

  it("names the bad value and what is accepted", () => {
    const bad: [string[], Record<string, string>, RegExp][] = [
      [["--namespace", "Cast_Imaging"], {}, /"Cast_Imaging" is not a namespace name/],
      [["--concurrency", "0"], {}, /--concurrency must be a whole number from 1 to 64, got "0"/],
      [["--concurrency", "2.5"], {}, /--concurrency must be a whole number/],
      [[], { HEALTH_PORT: "70000" }, /--health-port must be a port number/],
      [["--log-level", "verbose"], {}, /--log-level must be one of error, warn, info, debug/],
      [["--allowed-endpoints", "10.0.0.0/8,*"], {}, /--allowed-endpoints \/ ALLOWED_ENDPOINTS: "\*" is not an IP address, a CIDR, a DNS name or \*\.<DNS name>/],
      [["--mount-path-prefix", "/"], {}, /--mount-path-prefix \/ MOUNT_PATH_PREFIX must be an absolute directory below \/ .*got "\/"/],
      [["--mount-path-prefix", "relative/dir"], {}, /must be an absolute directory/],
      [["--mount-path-prefix", "/etc/../usr"], {}, /must be an absolute directory/],
      [["--frobnicate"], {}, /Unknown option '--frobnicate'.*see --help/],
      [["--leader-elect"], {}, /needs the Lease's namespace/],
      [["--leader-elect", "--leader-election-namespace", "ops", "--lease-duration", "soon"], {}, /--lease-duration must be a positive duration such as 15s or 500ms, got "soon"/],
      [["--leader-elect", "--leader-election-namespace", "ops", "--lease-duration", "5s", "--renew-deadline", "5s"], {}, /lease duration must be longer than the renew deadline/],
      [["--leader-elect", "--leader-election-namespace", "ops", "--leader-election-id", "My Lease"], {}, /--leader-election-id must be a DNS label/],
    ];
    for (const [argv, env, message] of bad) expect(() => parse(argv, env), argv.join(" ")).to.throw(UsageError, message);
  });

  it("configures leader election from flags, POD_NAMESPACE or the in-cluster namespace", () => {
    expect(parse(["--leader-elect"], { POD_NAMESPACE: "ops" }).leaderElection).to.deep.equal({
      namespace: "ops",
      name: "imaging-db-mtls-operator",
      identity: "pod-a_1234",
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
    expect(parse([], { LEADER_ELECT: "true" }, "from-sa").leaderElection?.namespace).to.equal("from-sa");
    const fast = parse(["--leader-elect", "--leader-election-namespace", "x", "--leader-election-id", "le", "--lease-duration", "4s", "--renew-deadline", "3s", "--retry-period", "500ms"]).leaderElection;
    expect(fast).to.deep.include({ namespace: "x", name: "le", leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 });
    expect(parse([], { LEADER_ELECT: "false", POD_NAMESPACE: "ops" }).leaderElection).to.equal(undefined);
  });
});
