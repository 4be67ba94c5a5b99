/**
 * Chain depth limits. Some VMMs open only a few backing files, so an image
 * with more layers gets its upper layers merged into one qcow2 file. The
 * lower layers, which images share most, stay separate files.
 */

import { createHash } from "node:crypto";
import { rm, stat } from "node:fs/promises";

import { InvalidArgumentError } from "../errors.js";
import { Qcow2Chain } from "../qcow2/index.js";
import { publishFile, temporaryPathFor } from "../store/atomic.js";
import type { MergedRecord } from "../store/records.js";
import type { Store } from "../store/store.js";

/**
 * Files each VMM opens at most for one disk, overlay included; undefined
 * means no limit layerdisk needs to respect. docs/vmm.md gives the sources.
 */
export const MAX_DEPTH_PRESETS = {
  "cloud-hypervisor": 10,
  crosvm: 10,
  qemu: undefined,
  libkrun: undefined,
} as const satisfies Record<string, number | undefined>;

export type MaxDepthPreset = keyof typeof MAX_DEPTH_PRESETS;

/** The smallest useful limit: one merged file and the overlay. */
export const MIN_MAX_DEPTH = 2;

/** Returns the file limit of a number or preset name; undefined means no limit. */
export function resolveMaxDepth(value: number | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string" && value in MAX_DEPTH_PRESETS) return MAX_DEPTH_PRESETS[value as MaxDepthPreset];
  const depth = typeof value === "number" ? value : /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(depth) || depth < MIN_MAX_DEPTH) {
    const presets = Object.keys(MAX_DEPTH_PRESETS).join(", ");
    throw new InvalidArgumentError(
      "ERR_INVALID_MAX_DEPTH",
      `invalid maxDepth ${JSON.stringify(value)}: expected an integer of at least ${MIN_MAX_DEPTH} or one of ${presets}`,
    );
  }
  return depth;
}

/**
 * Returns how many of `layerCount` layers stay separate files when the
 * chain, overlay included, may have at most `maxDepth` files. The layers
 * above them are merged into one file.
 */
export function keptLayerCount(layerCount: number, maxDepth: number | undefined): number {
  if (maxDepth === undefined || layerCount + 1 <= maxDepth) return layerCount;
  return maxDepth - 2;
}

/** Returns the store key of the file merging the layers above `baseChainId` up to `topChainId`. */
export function mergedKey(baseChainId: string | null, topChainId: string): string {
  return createHash("sha256").update(`${baseChainId ?? "none"}\n${topChainId}`).digest("hex");
}

export interface MergeRequest {
  parametersId: string;
  /** Chain IDs of all the image's layers, bottom to top. */
  chainIds: readonly string[];
  /** Number of bottom layers that stay separate files. */
  keptLayers: number;
}

/**
 * Returns the record of the merged file for the layers above `keptLayers`,
 * creating it once across processes under its lock. The file is written
 * under a temporary name and renamed into place, then its record follows.
 */
export async function ensureMerged(store: Store, request: MergeRequest): Promise<MergedRecord> {
  const { parametersId, chainIds, keptLayers } = request;
  const baseChainId = keptLayers === 0 ? null : chainIds[keptLayers - 1]!;
  const topChainId = chainIds.at(-1)!;
  const key = mergedKey(baseChainId, topChainId);

  const existing = await store.readMerged(parametersId, key);
  if (existing) return existing;
  return store.withMergedLock(parametersId, key, async () => {
    const merged = await store.readMerged(parametersId, key);
    if (merged) return merged;

    const file = store.mergedFile(parametersId, key);
    const top = store.layerFile(parametersId, topChainId);
    await flattenTopLayers(top, file, chainIds.length - keptLayers, keptLayers === 0, store.layerFolder(parametersId));
    const record: MergedRecord = {
      key,
      parametersId,
      baseChainId,
      chainIds: chainIds.slice(keptLayers),
      fileBytes: (await stat(file)).blocks * 512,
      createdAt: new Date().toISOString(),
    };
    await store.writeMergedRecord(record);
    return record;
  });
}

async function flattenTopLayers(top: string, file: string, layers: number, standalone: boolean, allowedDir: string): Promise<void> {
  const temporary = temporaryPathFor(file);
  try {
    const chain = await Qcow2Chain.open(top, { allowedDir });
    try {
      // Without `layers` the result has no backing file. With it, the
      // result's backing file is the highest layer not merged.
      await chain.flatten(temporary, standalone ? {} : { layers });
    } finally {
      await chain.close();
    }
    await publishFile(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

export interface DepthLimitedChain {
  /** The files the overlay is backed by, bottom to top. */
  chain: string[];
  /** Key of the merged file at the top of `chain`, when one was needed. */
  mergedKey?: string;
}

/**
 * Returns the chain of files to use under the overlay: the layer files
 * themselves when they fit in `maxDepth` files with the overlay, or else the
 * lowest layers followed by one merged file.
 */
export async function limitChainDepth(
  store: Store,
  parametersId: string,
  chainIds: readonly string[],
  layerFiles: readonly string[],
  maxDepth: number | undefined,
): Promise<DepthLimitedChain> {
  const keptLayers = keptLayerCount(chainIds.length, maxDepth);
  if (keptLayers === chainIds.length) return { chain: [...layerFiles] };
  const merged = await ensureMerged(store, { parametersId, chainIds, keptLayers });
  return { chain: [...layerFiles.slice(0, keptLayers), store.mergedFile(parametersId, merged.key)], mergedKey: merged.key };
}
