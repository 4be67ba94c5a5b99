import { stat } from "node:fs/promises";
import path from "node:path";

import { createChain, type CreateChainOptions } from "../../src/chain/create.js";
import { deleteOverlay } from "../../src/chain/overlay.js";
import { Store } from "../../src/store/store.js";

/** Root of the layerdisk store the benchmarks convert into; layers stay cached there between runs. */
export function benchStoreRoot(): string {
  return process.env.LAYERDISK_BENCH_STORE ?? "/var/cache/layerdisk-bench/store";
}

/** The chain a benchmark booted, as stored with its results. */
export interface ChainRecord {
  /** Image reference given to createChain, or "file" for a chain passed with --chain-top. */
  reference: string;
  /** maxDepth passed to createChain, if any. */
  maxDepth?: number;
  /** Chain IDs of the image's layers, bottom to top. */
  chainIds: string[];
  /** Files below the overlay, bottom to top, as createChain returned them. */
  files: string[];
  /** Files the VMM opens, the per-boot overlay included. */
  fileCount: number;
  /** Sum of the allocated bytes of `files`. */
  allocatedBytes: number;
  /** Virtual size of the disk and of the ext4 filesystem, in bytes. */
  virtualSize: number;
}

/** Returns the bytes a file occupies on disk (st_blocks × 512), which for sparse files is less than its size. */
export async function allocatedBytes(file: string): Promise<number> {
  const stats = await stat(file);
  return stats.blocks * 512;
}

/** A fresh layerdisk overlay and the chain under it; `release` deletes the overlay and its store record. */
export interface FreshChain {
  disk: string;
  record: ChainRecord;
  release(): Promise<void>;
}

/**
 * Runs createChain for `reference` in the benchmark store, which converts
 * only the layers it does not hold yet, and returns the new overlay written
 * at `disk`. Every call gives an empty overlay, so each boot starts from
 * the image as built.
 */
export async function freshLayerdiskChain(
  reference: string,
  disk: string,
  options: Pick<CreateChainOptions, "maxDepth" | "onProgress"> = {},
): Promise<FreshChain> {
  const store = await new Store(benchStoreRoot()).open();
  const result = await createChain(reference, { ...options, store, disk: path.resolve(disk) });
  let bytes = 0;
  for (const file of result.chain) bytes += await allocatedBytes(file);
  const maxDepth = typeof options.maxDepth === "number" ? options.maxDepth : undefined;
  return {
    disk: result.disk,
    record: {
      reference,
      ...(maxDepth === undefined ? {} : { maxDepth }),
      chainIds: result.chainIds,
      files: result.chain,
      fileCount: result.chain.length + 1,
      allocatedBytes: bytes,
      virtualSize: result.virtualSize,
    },
    release: () => deleteOverlay(store, result.overlayId),
  };
}
