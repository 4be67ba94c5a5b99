/**
 * Worker thread entry: creates one layer's qcow2 file over its parent,
 * formats or opens the ext4 filesystem in it, applies the layer's tar and
 * commits. Runs entirely off the main thread.
 */

import { Transform } from "node:stream";
import { parentPort, workerData } from "node:worker_threads";

import { openLayer } from "../image/layer-stream.js";
import { applyLayer } from "../layer/apply.js";
import { createImage } from "../qcow2/index.js";
import { readTar } from "../tar/reader.js";
import type { ConvertJob, SerializedError, WorkerMessage } from "./convert-job.js";
import { openLayerFilesystem } from "./ext4-target.js";

/** Minimum bytes between two progress messages. */
const PROGRESS_INTERVAL_BYTES = 4 * 1024 * 1024;

function send(message: WorkerMessage): void {
  parentPort!.postMessage(message);
}

function serialize(error: unknown): SerializedError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const fields = error as Error & Partial<Record<"code" | "file" | "path" | "digest", string>> & { offset?: number };
  return {
    name: error.name,
    code: fields.code,
    message: error.message,
    file: fields.file,
    offset: fields.offset,
    path: fields.path,
    digest: fields.digest,
  };
}

/** Passes bytes through, reporting how many went by. */
function countBytes(): Transform {
  let bytesDone = 0;
  let reported = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytesDone += chunk.length;
      if (bytesDone - reported >= PROGRESS_INTERVAL_BYTES) {
        reported = bytesDone;
        send({ type: "progress", bytesDone });
      }
      callback(null, chunk);
    },
  });
}

async function convert(job: ConvertJob): Promise<void> {
  await createImage(job.layerFile, {
    virtualSize: job.parameters.fsSize,
    clusterSize: job.parameters.clusterSize,
    backing: job.backingFile === null ? undefined : { path: job.backingFile, format: "qcow2" },
  });

  const filesystem = openLayerFilesystem(job);
  try {
    const tar = openLayer(job.layer);
    const counted = tar.pipe(countBytes());
    tar.on("error", (error) => counted.destroy(error));
    const stats = await applyLayer(filesystem.target, readTar(counted, { file: job.layer.location.file }));
    filesystem.commit();
    send({ type: "done", entries: stats.entries, bytes: stats.bytes });
  } finally {
    filesystem.close();
  }
}

convert(workerData as ConvertJob).catch((error: unknown) => send({ type: "error", error: serialize(error) }));
