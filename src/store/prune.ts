/**
 * Removal of what nothing references. That is layers that no image record
 * and no live overlay needs, merged files no live overlay uses, and overlay
 * records whose disk is gone. It is also blobs that no image or pull record
 * lists, and temporary files left by crashed conversions.
 */

import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";

import { withFileLock } from "./lock.js";
import type { LayerRecord } from "./records.js";
import { Store } from "./store.js";

export interface PruneResult {
  removedLayers: string[];
  /** Keys of merged files removed. */
  removedMergedFiles: string[];
  removedOverlayRecords: string[];
  removedBlobs: string[];
  removedTemporaryFiles: string[];
  /** Bytes freed, counting only regular files removed. */
  freedBytes: number;
}

/** Name of the lock that conversions hold shared and prune holds exclusive. */
export const STORE_USE_LOCK = "store-use";

async function fileBytes(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Adds `chainId` and every layer below it to `keep`. */
function markChain(
  layers: Map<string, LayerRecord>,
  parametersId: string,
  chainId: string | null,
  keep: Set<string>,
): void {
  while (chainId !== null) {
    const key = `${parametersId}/${chainId}`;
    if (keep.has(key)) return;
    keep.add(key);
    chainId = layers.get(key)?.parentChainId ?? null;
  }
}

async function removeTemporaryFiles(folder: string, result: PruneResult): Promise<void> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return;
  }
  for (const name of names.filter((entry) => entry.startsWith(".tmp-"))) {
    const path = join(folder, name);
    result.freedBytes += await fileBytes(path);
    await rm(path, { force: true, recursive: true });
    result.removedTemporaryFiles.push(path);
  }
}

/**
 * Removes everything unreferenced. Holds the store-use lock exclusively, so
 * no conversion runs meanwhile and every temporary file is a leftover.
 */
export async function prune(store: Store): Promise<PruneResult> {
  return withFileLock(store.lockFile(STORE_USE_LOCK), () => pruneLocked(store));
}

async function pruneLocked(store: Store): Promise<PruneResult> {
  const result: PruneResult = {
    removedLayers: [],
    removedMergedFiles: [],
    removedOverlayRecords: [],
    removedBlobs: [],
    removedTemporaryFiles: [],
    freedBytes: 0,
  };
  const layers = new Map((await store.listLayers()).map((layer) => [`${layer.parametersId}/${layer.chainId}`, layer]));
  const images = await store.listImages();
  const keep = new Set<string>();
  const keepBlobs = new Set<string>();
  const keepMerged = new Set<string>();

  for (const image of images) {
    markChain(layers, image.parametersId, image.chainIds.at(-1) ?? null, keep);
    for (const digest of [image.manifestDigest, image.configDigest, ...image.layerDigests]) keepBlobs.add(digest);
  }

  for (const pull of await store.listPulls()) {
    for (const digest of [pull.indexDigest, pull.manifestDigest, pull.configDigest, ...pull.layerDigests]) {
      if (digest !== undefined) keepBlobs.add(digest);
    }
  }

  for (const overlay of await store.listOverlays()) {
    if (await exists(overlay.disk)) {
      markChain(layers, overlay.parametersId, overlay.topChainId, keep);
      if (overlay.mergedKey !== undefined) keepMerged.add(`${overlay.parametersId}/${overlay.mergedKey}`);
    } else {
      await store.removeOverlayRecord(overlay.id);
      result.removedOverlayRecords.push(overlay.id);
    }
  }

  // A merged file is only a cache for overlays; createChain makes it again.
  for (const merged of await store.listMerged()) {
    if (keepMerged.has(`${merged.parametersId}/${merged.key}`)) continue;
    result.freedBytes += await fileBytes(store.mergedFile(merged.parametersId, merged.key));
    await store.removeMerged(merged.parametersId, merged.key);
    result.removedMergedFiles.push(merged.key);
  }

  for (const [key, layer] of layers) {
    if (keep.has(key)) continue;
    result.freedBytes += await fileBytes(store.layerFile(layer.parametersId, layer.chainId));
    await store.removeLayer(layer.parametersId, layer.chainId);
    result.removedLayers.push(layer.chainId);
  }

  const blobFolder = join(store.root, "blobs", "sha256");
  for (const name of await readdir(blobFolder)) {
    if (name.startsWith(".tmp-") || keepBlobs.has(`sha256:${name}`)) continue;
    result.freedBytes += await fileBytes(join(blobFolder, name));
    await rm(join(blobFolder, name), { force: true });
    result.removedBlobs.push(`sha256:${name}`);
  }

  await removeTemporaryFiles(blobFolder, result);
  await removeTemporaryFiles(join(store.root, "tmp"), result);
  await removeTemporaryFiles(store.overlayFolder(), result);
  for (const parametersId of await readdir(join(store.root, "layers"))) {
    await removeTemporaryFiles(store.layerFolder(parametersId), result);
  }
  return result;
}
