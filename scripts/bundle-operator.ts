/**
 * The operator as the image runs it: src/main.ts and every package it loads in one CommonJS file (esbuild), which
 * needs no node_modules next to it. Node then compiles only the code the operator reaches, not every module of every
 * package (@kubernetes/client-node alone loads its whole generated API): idle RSS 103 instead of 129 MiB, measured
 * with `SCALE_SDB=1 SCALE_IMC=1000 npm run bench -- scale`. Not minified, so stack traces keep their names.
 *
 *   npx tsx scripts/bundle-operator.ts [outfile]     (default dist/main.js; npm run build runs it)
 */
import { build } from "esbuild";
import { join, resolve } from "node:path";

const REPO = resolve(__dirname, "..");

/**
 * The V8 flags the image runs dist/main.js with (the Dockerfile's ENTRYPOINT; the scale bench and the Helm chart's
 * test run it so too), each chosen by `npm run bench -- scale` (SCALE_NODE_FLAGS overrides them there):
 * - semi-spaces of 4 MiB instead of 16 for the young generation: peak RSS 343 instead of 402 MiB in the 1000 + 1000
 *   storm, for 3 % more CPU;
 * - the old generation grown by half at each full GC instead of V8's up to 4x: peak RSS 188-191 instead of 264-277 MiB
 *   in the 1 + 1000 storm, operator CPU within the runs' noise (12.2-13.7 against 11.2-14.6 s).
 */
export const IMAGE_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=4", "--heap-growing-percent=50"];

export async function bundleOperator(outfile: string): Promise<void> {
  await build({
    entryPoints: [join(REPO, "src", "main.ts")],
    outfile,
    bundle: true,
    platform: "node",
    target: "node24",
    format: "cjs",
    // @peculiar/x509 throws at load without the Reflect polyfill; esbuild evaluates an entry's CommonJS imports after
    // the ES modules it hoists, so main.ts's first import would come too late: injected, it runs before any of them.
    inject: [require.resolve("reflect-metadata")],
    logLevel: "warning",
    absWorkingDir: REPO,
  });
}

if (require.main === module) {
  bundleOperator(resolve(process.argv[2] ?? join(REPO, "dist", "main.js"))).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
