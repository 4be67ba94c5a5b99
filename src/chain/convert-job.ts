/** The message a layer conversion worker receives, and the ones it sends back. */

import type { ResolvedLayer } from "../image/types.js";
import type { ConversionParameters } from "../store/parameters.js";

export interface ConvertJob {
  /** qcow2 file to create and fill; a temporary name beside its final one. */
  layerFile: string;
  /** The parent layer's qcow2 file, or null for the bottom layer. */
  backingFile: string | null;
  /** Folder every backing file must resolve into: the store's layer folder. */
  allowedDir: string;
  parameters: ConversionParameters;
  /** Chain ID of the layer; the seed of the filesystem's UUID and hash seed. */
  chainId: string;
  layer: ResolvedLayer;
}

export type WorkerMessage =
  | { type: "progress"; bytesDone: number }
  | { type: "done"; entries: number; bytes: number }
  | { type: "error"; error: SerializedError };

/** An error as it crosses from the worker thread to the main thread. */
export interface SerializedError {
  name: string;
  code?: string;
  message: string;
  file?: string;
  offset?: number;
  path?: string;
  digest?: string;
}
