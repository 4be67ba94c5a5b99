/**
 * Export: one standalone file from a chain, for VMMs that read no qcow2,
 * such as Firecracker and Apple's Virtualization.framework.
 */

import { rm } from "node:fs/promises";
import { resolve } from "node:path";

import { Qcow2Chain, type ImageFormat } from "../qcow2/index.js";
import { publishFile, temporaryPathFor } from "../store/atomic.js";

export interface ExportOptions {
  /** `qcow2` writes a qcow2 with no backing file; `raw` a sparse raw file. Default `raw`. */
  format?: ImageFormat;
  /** Folder every backing file must resolve into. Default: backing files may be anywhere. */
  allowedDir?: string;
}

/**
 * Copies what the chain under `top` reads into `output`. The file is
 * written under a temporary name beside `output` and renamed into place,
 * so `output` is never seen half-written. Returns the absolute output path.
 */
export async function exportChain(top: string, output: string, options: ExportOptions = {}): Promise<string> {
  const destination = resolve(output);
  const temporary = temporaryPathFor(destination);
  try {
    const chain = await Qcow2Chain.open(
      top,
      options.allowedDir === undefined ? { allowAnyDir: true } : { allowedDir: options.allowedDir },
    );
    try {
      await chain.flatten(temporary, { format: options.format ?? "raw" });
    } finally {
      await chain.close();
    }
    await publishFile(temporary, destination);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return destination;
}
