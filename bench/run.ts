/** `npm run bench`: every benchmark, each printing its own table. */
import "reflect-metadata";
import { runImagingConnectionBench } from "./imagingconnection";
import { runPkiBench } from "./pki";
import { runRequestCostsBench } from "./request-costs";
import { runRotationBench } from "./rotation";
import { runScaleBench } from "./scale";
import { runSecureDatabaseBench } from "./securedatabase";

async function main(): Promise<void> {
  const only = process.argv[2];
  if (!only || only === "pki") await runPkiBench();
  if (!only || only === "securedatabase") await runSecureDatabaseBench();
  if (!only || only === "imagingconnection") await runImagingConnectionBench();
  if (!only || only === "rotation") await runRotationBench();
  if (!only || only === "scale") await runScaleBench();
  if (!only || only === "request-costs") await runRequestCostsBench();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
