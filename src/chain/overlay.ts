/**
 * Writable overlays: the per-VM qcow2 file on top of an image's chain.
 * Each one has a record in the store, from which prune finds the layers
 * that live overlays still need.
 */

import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";

import { LayerdiskError } from "../errors.js";
import { createImage } from "../qcow2/index.js";
import { publishFile, temporaryPathFor } from "../store/atomic.js";
import type { OverlayRecord } from "../store/records.js";
import type { Store } from "../store/store.js";

export interface NewOverlay {
  reference: string;
  parametersId: string;
  topChainId: string;
  /** Merged file to back the overlay instead of the top layer file, when a depth limit applies. */
  mergedKey?: string;
  virtualSize: number;
  clusterSize: number;
  /** Path of the overlay file; by default `overlays/ID.qcow2` in the store. */
  disk?: string;
}

/** Returns the file an overlay is backed by: its merged file, or else the top layer file. */
export function overlayBackingFile(store: Store, record: OverlayRecord): string {
  if (record.mergedKey !== undefined) return store.mergedFile(record.parametersId, record.mergedKey);
  return store.layerFile(record.parametersId, record.topChainId);
}

/** Writes an empty qcow2 over the top layer or merged file at `disk`, atomically. */
async function writeOverlayFile(store: Store, record: OverlayRecord, virtualSize: number, clusterSize: number) {
  const temporary = temporaryPathFor(record.disk);
  try {
    await createImage(temporary, {
      virtualSize,
      clusterSize,
      backing: { path: overlayBackingFile(store, record), format: "qcow2" },
    });
    await publishFile(temporary, record.disk);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

export async function createOverlay(store: Store, overlay: NewOverlay): Promise<OverlayRecord> {
  const id = randomBytes(8).toString("hex");
  const disk = overlay.disk === undefined ? join(store.overlayFolder(), `${id}.qcow2`) : resolve(overlay.disk);
  const record: OverlayRecord = {
    id,
    disk,
    reference: overlay.reference,
    parametersId: overlay.parametersId,
    topChainId: overlay.topChainId,
    ...(overlay.mergedKey === undefined ? {} : { mergedKey: overlay.mergedKey }),
    createdAt: new Date().toISOString(),
  };
  // The record comes first: prune must never see the disk without it.
  await store.writeOverlay(record);
  try {
    await writeOverlayFile(store, record, overlay.virtualSize, overlay.clusterSize);
  } catch (error) {
    await store.removeOverlayRecord(id);
    throw error;
  }
  return record;
}

async function findOverlay(store: Store, id: string): Promise<OverlayRecord> {
  const record = await store.readOverlay(id);
  if (!record) {
    throw new LayerdiskError("ERR_OVERLAY_NOT_FOUND", `no overlay "${id}" in ${store.root}; run "layerdisk ls" to see overlays`);
  }
  return record;
}

/**
 * Discards every write made to an overlay, giving the image's pristine
 * filesystem again. The VM using it must be stopped first.
 */
export async function resetOverlay(store: Store, id: string): Promise<OverlayRecord> {
  const record = await findOverlay(store, id);
  const layer = await store.readLayer(record.parametersId, record.topChainId);
  if (!layer) {
    throw new LayerdiskError(
      "ERR_LAYER_NOT_FOUND",
      `the top layer ${record.topChainId} of overlay ${id} is missing from the store; create the chain again`,
      { digest: record.topChainId },
    );
  }
  if (record.mergedKey !== undefined && !(await store.readMerged(record.parametersId, record.mergedKey))) {
    throw new LayerdiskError(
      "ERR_LAYER_NOT_FOUND",
      `the merged file ${record.mergedKey} under overlay ${id} is missing from the store; create the chain again`,
      { file: store.mergedFile(record.parametersId, record.mergedKey) },
    );
  }
  await writeOverlayFile(store, record, layer.parameters.fsSize, layer.parameters.clusterSize);
  return record;
}

/** Removes an overlay's disk and record; prune may then free its layers. */
export async function deleteOverlay(store: Store, id: string): Promise<void> {
  const record = await findOverlay(store, id);
  if (!isAbsolute(record.disk)) throw new LayerdiskError("ERR_STORE_CORRUPT", `overlay ${id} has a relative disk path`);
  await rm(record.disk, { force: true });
  await store.removeOverlayRecord(id);
}
