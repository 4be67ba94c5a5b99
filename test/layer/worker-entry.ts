// Runs the per-layer pipeline inside a worker thread, as the native ext4
// writer will: the layer arrives as plain data and the target is built here.
import { parentPort, workerData } from "node:worker_threads";

import { applyImageLayer } from "../../src/image/layer-stream.js";
import type { ResolvedLayer } from "../../src/image/types.js";
import { renderListTree } from "../../src/layer/list-tree.js";
import { MemoryTarget } from "../../src/layer/memory-target.js";

const layers = workerData as ResolvedLayer[];
const target = new MemoryTarget();
try {
  for (const layer of layers) await applyImageLayer(layer, target);
  parentPort?.postMessage({ listing: renderListTree(target) });
} catch (error) {
  const { code, message, digest } = error as { code?: string; message: string; digest?: string };
  parentPort?.postMessage({ error: { code, message, digest } });
}
