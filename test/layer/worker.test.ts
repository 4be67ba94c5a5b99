import { Worker } from "node:worker_threads";

import { describe, expect, it } from "vitest";

import { resolveImage } from "../../src/image/resolve.js";
import type { ResolvedLayer } from "../../src/image/types.js";
import { buildLayout, makeTar, sha256 } from "../image/builder.js";
import { listImage } from "../image/testdata.js";

interface WorkerResult {
  listing?: string;
  error?: { code?: string; message: string; digest?: string };
}

/**
 * Applies layers in a worker thread. The worker registers tsx before it
 * imports the TypeScript entry, because Node 20 does not pass `--import`
 * loaders to a worker's entry file.
 */
function applyInWorker(layers: ResolvedLayer[]): Promise<WorkerResult> {
  const entry = new URL("./worker-entry.ts", import.meta.url).href;
  const bootstrap = `import("tsx/esm/api").then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`;
  const worker = new Worker(bootstrap, { eval: true, workerData: layers });
  return new Promise((resolve, reject) => {
    worker.once("message", (result: WorkerResult) => {
      void worker.terminate();
      resolve(result);
    });
    worker.once("error", reject);
  });
}

describe("worker thread pipeline", () => {
  it("resolved layers apply inside a worker", async () => {
    const layout = buildLayout({
      layers: [
        { tar: await makeTar([{ name: "etc/os-release", content: "ID=test\n" }]) },
        { tar: await makeTar([{ name: "etc/.wh.os-release" }, { name: "usr/bin/tool", content: "x" }]), compression: "zstd" },
      ],
    });
    const image = await resolveImage(layout);
    const result = await applyInWorker(image.layers);
    expect(result.error).toBeUndefined();
    expect(result.listing).toBe(await listImage(layout));
  });

  it("verification errors cross the worker boundary", async () => {
    const wrong = sha256("other");
    const layout = buildLayout({ layers: [{ tar: await makeTar([{ name: "f" }]), diffId: wrong }] });
    const image = await resolveImage(layout);
    const result = await applyInWorker(image.layers);
    expect(result.error).toMatchObject({ code: "ERR_IMAGE_DIGEST_MISMATCH", digest: wrong });
  });
});
