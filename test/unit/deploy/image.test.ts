/**
 * The Dockerfile's runtime stage: it holds the bundled dist/main.js alone and runs it with the V8 flags the scale
 * bench measured (IMAGE_NODE_FLAGS, which the bench and the Helm chart's test run the operator with too).
 */
import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { IMAGE_NODE_FLAGS } from "../../../scripts/bundle-operator";

const REPO = resolve(__dirname, "..", "..", "..");

/** The instructions of the Dockerfile's last stage (from its last FROM), continuation lines joined. */
async function runtimeStage(): Promise<string[]> {
  const lines = (await readFile(join(REPO, "Dockerfile"), "utf8")).replace(/\\\n/g, " ").split("\n");
  const instructions = lines.map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  const from = instructions.map((l) => l.startsWith("FROM ")).lastIndexOf(true);
  return instructions.slice(from);
}

describe("the image (Dockerfile)", () => {
  it("runs dist/main.js with exactly IMAGE_NODE_FLAGS", async () => {
    const entrypoint = (await runtimeStage()).find((l) => l.startsWith("ENTRYPOINT "));
    expect(entrypoint, "an ENTRYPOINT in the runtime stage").to.not.equal(undefined);
    expect(JSON.parse(entrypoint!.slice("ENTRYPOINT ".length))).to.deep.equal(["/nodejs/bin/node", ...IMAGE_NODE_FLAGS, "dist/main.js"]);
  });

  it("copies the bundle alone into its runtime stage: no node_modules, no sources", async () => {
    const copies = (await runtimeStage()).filter((l) => l.startsWith("COPY "));
    expect(copies).to.deep.equal(["COPY --from=build /app/dist/main.js ./dist/main.js"]);
  });
});
