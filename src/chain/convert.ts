/**
 * Converting one layer on a worker thread, so that decompression, tar
 * parsing and the synchronous ext4 calls never block the event loop.
 */

import { Worker } from "node:worker_threads";

import { LayerdiskError } from "../errors.js";
import type { ConvertJob, SerializedError, WorkerMessage } from "./convert-job.js";

export interface ConvertOptions {
  signal?: AbortSignal;
  onProgress?: (bytesDone: number) => void;
}

export interface ConvertResult {
  entries: number;
  /** File data bytes written, holes excluded. */
  bytes: number;
}

/** Rebuilds an error sent by the worker, keeping its class name, code and location. */
function reviveError(serialized: SerializedError): LayerdiskError {
  const error = new LayerdiskError(serialized.code ?? "ERR_CONVERT_FAILED", serialized.message, {
    file: serialized.file,
    offset: serialized.offset,
    path: serialized.path,
    digest: serialized.digest,
  });
  Object.defineProperty(error, "name", { value: serialized.name });
  return error;
}

/**
 * Starts the worker script. From the built package it is plain JavaScript.
 * From the TypeScript sources (tests, `tsx`) a small bootstrap registers the
 * tsx loader inside the worker first, because Node 20 does not apply
 * `--import` given in a worker's `execArgv`.
 */
function startWorker(job: ConvertJob): Worker {
  if (!import.meta.url.endsWith(".ts")) {
    return new Worker(new URL("./convert-worker.js", import.meta.url), { workerData: job });
  }
  const script = new URL("./convert-worker.ts", import.meta.url).href;
  const bootstrap = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(script)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: job });
}

export function convertLayer(job: ConvertJob, options: ConvertOptions = {}): Promise<ConvertResult> {
  options.signal?.throwIfAborted();
  return new Promise((resolve, reject) => {
    const worker = startWorker(job);
    let settled = false;
    const settle = (action: () => void) => {
      if (settled) return;
      settled = true;
      options.signal?.removeEventListener("abort", abort);
      action();
    };
    // The worker must be gone before the caller deletes its temporary file,
    // or it could write the file again.
    const abort = () => {
      void worker.terminate().finally(() => settle(() => reject(options.signal!.reason)));
    };
    options.signal?.addEventListener("abort", abort, { once: true });

    worker.on("message", (message: WorkerMessage) => {
      if (message.type === "progress") options.onProgress?.(message.bytesDone);
      else if (message.type === "done") settle(() => resolve({ entries: message.entries, bytes: message.bytes }));
      else settle(() => reject(reviveError(message.error)));
    });
    worker.on("error", (error) => settle(() => reject(error)));
    worker.on("exit", (code) =>
      settle(() => reject(new LayerdiskError("ERR_CONVERT_FAILED", `layer conversion worker exited with code ${code} before finishing`))),
    );
  });
}
