import type { Readable, Stream } from "node:stream";

import { ImageError, LayerdiskError } from "../errors.js";
import { applyLayer, type ApplyStats } from "../layer/apply.js";
import type { LayerTarget } from "../layer/target.js";
import type { TarEntry } from "../tar/entry.js";
import { readTar } from "../tar/reader.js";
import { openBlob } from "./blob.js";
import { createDecompressor } from "./decompress.js";
import type { ResolvedLayer } from "./types.js";
import { VerifyStream } from "./verify.js";

/**
 * Opens a layer as a stream of its uncompressed tar. While the bytes flow,
 * the blob is checked against its digest and size and the tar against the
 * layer's diff ID; a mismatch fails the stream at its end instead of
 * ending it. Memory use does not grow with the layer size.
 */
export function openLayer(layer: ResolvedLayer): Readable {
  const file = layer.location.file;
  const stages: Stream[] = [openBlob(layer.location)];
  if (layer.digest !== undefined) {
    stages.push(new VerifyStream({ digest: layer.digest, size: layer.size, subject: `layer ${layer.index} blob`, file }));
  }
  stages.push(createDecompressor(layer.compression));
  stages.push(new VerifyStream({ digest: layer.diffId, subject: `layer ${layer.index} uncompressed tar (diff_id)`, file }));

  return chain(stages, (error, stage) => {
    if (error instanceof LayerdiskError) return error;
    const message = error instanceof Error ? error.message : String(error);
    const digest = layer.digest ?? layer.diffId;
    if (stage === 0) {
      return new ImageError("ERR_IMAGE_READ", `Failed to read layer ${digest} from ${file}: ${message}`, { digest, file, cause: error });
    }
    return new ImageError("ERR_IMAGE_DECOMPRESS", `Failed to decompress layer ${digest} (${layer.compression}): ${message}`, {
      digest,
      file,
      cause: error,
    });
  });
}

/** Streams a layer's tar entries; the iteration fails if the layer does not verify. */
export function readLayerEntries(layer: ResolvedLayer): AsyncGenerator<TarEntry> {
  return readTar(openLayer(layer), { file: layer.location.file });
}

/**
 * Runs the whole per-layer pipeline: read the blob, decompress, verify,
 * parse the tar and apply it to `target`. Everything it takes is plain data
 * or a target built by the caller, so a worker thread can run it with a
 * `ResolvedLayer` received by `postMessage` and a target it constructs.
 */
export function applyImageLayer(layer: ResolvedLayer, target: LayerTarget): Promise<ApplyStats> {
  return applyLayer(target, readLayerEntries(layer));
}

/**
 * Pipes `stages` into each other and returns the last. The first error of
 * any stage, after `mapError`, fails the last stage. When the last stage
 * closes, for any reason, the others are destroyed so that no file stays
 * open after a reader stops early.
 */
function chain(stages: Stream[], mapError: (error: unknown, stage: number) => Error): Readable {
  const last = stages.at(-1) as Readable;
  for (let i = 0; i + 1 < stages.length; i++) {
    (stages[i] as Readable).pipe(stages[i + 1] as unknown as NodeJS.WritableStream);
  }

  let failed = false;
  stages.forEach((stage, index) => {
    stage.on("error", (error: unknown) => {
      if (failed) return;
      failed = true;
      for (const other of stages) if (other !== last) (other as Readable).destroy();
      last.destroy(mapError(error, index));
    });
  });
  last.once("close", () => {
    for (const other of stages) if (other !== last) (other as Readable).destroy();
  });
  return last;
}
