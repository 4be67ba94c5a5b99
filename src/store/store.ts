/**
 * The chain store: converted layers, image records, overlays and cached
 * blobs under one root folder. docs/store.md describes the layout.
 *
 * Every file appears under its final name only once it is complete (see
 * atomic.ts), so readers never need a lock. Writers of one layer serialize
 * on that layer's lock file.
 */

import { createHash } from "node:crypto";
import { mkdir, readFile, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";

import { LayerdiskError } from "../errors.js";
import { writeFileAtomic } from "./atomic.js";
import { defaultStoreRoot } from "./location.js";
import { withFileLock } from "./lock.js";
import type { ImageRecord, LayerRecord, MergedRecord, OverlayRecord, PullRecord } from "./records.js";

/** Version of the folder layout; a store with another version is rejected. */
export const STORE_LAYOUT_VERSION = 1;

const DIGEST_PATTERN = /^sha256:([0-9a-f]{64})$/;

/** Name prefix of merged layer files and their records in a layer folder. */
const MERGED_PREFIX = "merged-";
const MERGED_KEY_PATTERN = /^[0-9a-f]{64}$/;

export class StoreError extends LayerdiskError {}

/** Returns the hex part of a `sha256:` digest, rejecting anything else. */
export function digestHex(digest: string): string {
  const match = DIGEST_PATTERN.exec(digest);
  if (!match) {
    throw new StoreError("ERR_STORE_INVALID_DIGEST", `invalid digest "${digest}": expected sha256: and 64 hex digits`, {
      digest,
    });
  }
  return match[1]!;
}

function checkMergedKey(key: string): string {
  if (!MERGED_KEY_PATTERN.test(key)) {
    throw new StoreError("ERR_STORE_CORRUPT", `invalid merged file key "${key}": expected 64 hex digits`);
  }
  return key;
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === "ENOENT";
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw new StoreError("ERR_STORE_CORRUPT", `store record ${path} is unreadable: ${(error as Error).message}`, {
      file: path,
      cause: error,
    });
  }
}

async function listNames(folder: string): Promise<string[]> {
  try {
    return (await readdir(folder)).filter((name) => !name.startsWith(".")).sort();
  } catch (error) {
    if (isMissing(error)) return [];
    throw error;
  }
}

export class Store {
  readonly root: string;

  constructor(root: string = defaultStoreRoot()) {
    this.root = root;
  }

  /** Creates the folders and checks the layout version. */
  async open(): Promise<this> {
    for (const folder of ["blobs/sha256", "layers", "images", "pulls", "overlays", "locks", "tmp"]) {
      await mkdir(join(this.root, folder), { recursive: true });
    }
    const versionFile = join(this.root, "VERSION");
    let version: string | undefined;
    try {
      version = (await readFile(versionFile, "utf8")).trim();
    } catch (error) {
      if (!isMissing(error)) throw error;
      await writeFileAtomic(versionFile, `${STORE_LAYOUT_VERSION}\n`);
      return this;
    }
    if (version !== String(STORE_LAYOUT_VERSION)) {
      throw new StoreError(
        "ERR_STORE_VERSION",
        `store ${this.root} has layout version ${version}, but this layerdisk reads version ${STORE_LAYOUT_VERSION}; ` +
          "use another store folder or remove this one",
        { file: versionFile },
      );
    }
    return this;
  }

  // Layout. Layer files of one parameter set share a folder, so each one's
  // backing file name is just its parent's file name.

  layerFolder(parametersId: string): string {
    return join(this.root, "layers", parametersId);
  }

  layerFile(parametersId: string, chainId: string): string {
    return join(this.layerFolder(parametersId), `${digestHex(chainId)}.qcow2`);
  }

  layerRecordFile(parametersId: string, chainId: string): string {
    return join(this.layerFolder(parametersId), `${digestHex(chainId)}.json`);
  }

  blobFile(digest: string): string {
    return join(this.root, "blobs", "sha256", digestHex(digest));
  }

  overlayFolder(): string {
    return join(this.root, "overlays");
  }

  overlayRecordFile(id: string): string {
    return join(this.overlayFolder(), `${id}.json`);
  }

  lockFile(name: string): string {
    return join(this.root, "locks", `${name}.lock`);
  }

  /** Runs `task` holding the lock for one layer of one parameter set. */
  withLayerLock<T>(parametersId: string, chainId: string, task: () => Promise<T>): Promise<T> {
    return withFileLock(this.lockFile(`layer-${parametersId}-${digestHex(chainId)}`), task);
  }

  // Layers.

  async readLayer(parametersId: string, chainId: string): Promise<LayerRecord | undefined> {
    const record = await readJson<LayerRecord>(this.layerRecordFile(parametersId, chainId));
    if (record === undefined) return undefined;
    // The record is written after the qcow2 file, so a record without its
    // file means the file was removed by hand.
    try {
      await stat(this.layerFile(parametersId, chainId));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    return record;
  }

  async writeLayerRecord(record: LayerRecord): Promise<void> {
    await writeFileAtomic(this.layerRecordFile(record.parametersId, record.chainId), JSON.stringify(record, null, 2));
  }

  async listLayers(): Promise<LayerRecord[]> {
    const records: LayerRecord[] = [];
    for (const parametersId of await listNames(join(this.root, "layers"))) {
      for (const name of await listNames(this.layerFolder(parametersId))) {
        if (!name.endsWith(".json") || name.startsWith(MERGED_PREFIX)) continue;
        const record = await this.readLayer(parametersId, `sha256:${name.slice(0, -".json".length)}`);
        if (record) records.push(record);
      }
    }
    return records;
  }

  /** Removes a layer's record first, then its file, so no record ever points at nothing. */
  async removeLayer(parametersId: string, chainId: string): Promise<void> {
    await rm(this.layerRecordFile(parametersId, chainId), { force: true });
    await rm(this.layerFile(parametersId, chainId), { force: true });
  }

  // Merged layer files, in the layer folder of their parameter set so that
  // their backing file name is the kept layer's plain file name.

  mergedFile(parametersId: string, key: string): string {
    return join(this.layerFolder(parametersId), `${MERGED_PREFIX}${checkMergedKey(key)}.qcow2`);
  }

  mergedRecordFile(parametersId: string, key: string): string {
    return join(this.layerFolder(parametersId), `${MERGED_PREFIX}${checkMergedKey(key)}.json`);
  }

  /** Runs `task` holding the lock for one merged file. */
  withMergedLock<T>(parametersId: string, key: string, task: () => Promise<T>): Promise<T> {
    return withFileLock(this.lockFile(`merged-${parametersId}-${checkMergedKey(key)}`), task);
  }

  /** Returns a merged file's record, or undefined when the record or its file is missing. */
  async readMerged(parametersId: string, key: string): Promise<MergedRecord | undefined> {
    const record = await readJson<MergedRecord>(this.mergedRecordFile(parametersId, key));
    if (record === undefined) return undefined;
    try {
      await stat(this.mergedFile(parametersId, key));
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    return record;
  }

  async writeMergedRecord(record: MergedRecord): Promise<void> {
    await writeFileAtomic(this.mergedRecordFile(record.parametersId, record.key), JSON.stringify(record, null, 2));
  }

  async listMerged(): Promise<MergedRecord[]> {
    const records: MergedRecord[] = [];
    for (const parametersId of await listNames(join(this.root, "layers"))) {
      for (const name of await listNames(this.layerFolder(parametersId))) {
        if (!name.startsWith(MERGED_PREFIX) || !name.endsWith(".json")) continue;
        const record = await this.readMerged(parametersId, name.slice(MERGED_PREFIX.length, -".json".length));
        if (record) records.push(record);
      }
    }
    return records;
  }

  /** Removes a merged file's record first, then the file, as `removeLayer` does. */
  async removeMerged(parametersId: string, key: string): Promise<void> {
    await rm(this.mergedRecordFile(parametersId, key), { force: true });
    await rm(this.mergedFile(parametersId, key), { force: true });
  }

  // Pulls: images in the blob cache that were not converted.

  async writePull(record: PullRecord): Promise<void> {
    const key = this.imageKey(record.reference, record.platform, "pull");
    await writeFileAtomic(join(this.root, "pulls", `${key}.json`), JSON.stringify(record, null, 2));
  }

  async listPulls(): Promise<Array<PullRecord & { key: string }>> {
    const pulls: Array<PullRecord & { key: string }> = [];
    for (const name of await listNames(join(this.root, "pulls"))) {
      if (!name.endsWith(".json")) continue;
      const record = await readJson<PullRecord>(join(this.root, "pulls", name));
      if (record) pulls.push({ ...record, key: name.slice(0, -".json".length) });
    }
    return pulls;
  }

  async removePull(key: string): Promise<void> {
    await rm(join(this.root, "pulls", `${key}.json`), { force: true });
  }

  // Images.

  /** Key of an image record: one per reference, platform and parameter set. */
  imageKey(reference: string, platform: string, parametersId: string): string {
    return createHash("sha256").update(`${reference}\n${platform}\n${parametersId}`).digest("hex").slice(0, 32);
  }

  async writeImage(record: ImageRecord): Promise<void> {
    const key = this.imageKey(record.reference, record.platform, record.parametersId);
    await writeFileAtomic(join(this.root, "images", `${key}.json`), JSON.stringify(record, null, 2));
  }

  async listImages(): Promise<Array<ImageRecord & { key: string }>> {
    const images: Array<ImageRecord & { key: string }> = [];
    for (const name of await listNames(join(this.root, "images"))) {
      if (!name.endsWith(".json")) continue;
      const record = await readJson<ImageRecord>(join(this.root, "images", name));
      if (record) images.push({ ...record, key: name.slice(0, -".json".length) });
    }
    return images;
  }

  /** Finds images by reference, manifest digest, or a prefix of the record key of at least 6 digits. */
  async findImages(query: string): Promise<Array<ImageRecord & { key: string }>> {
    const images = await this.listImages();
    return images.filter(
      (image) =>
        image.reference === query ||
        image.manifestDigest === query ||
        (query.length >= 6 && image.key.startsWith(query)),
    );
  }

  async removeImage(key: string): Promise<void> {
    await rm(join(this.root, "images", `${key}.json`), { force: true });
  }

  // Overlays.

  async writeOverlay(record: OverlayRecord): Promise<void> {
    await writeFileAtomic(this.overlayRecordFile(record.id), JSON.stringify(record, null, 2));
  }

  async readOverlay(id: string): Promise<OverlayRecord | undefined> {
    return readJson<OverlayRecord>(this.overlayRecordFile(id));
  }

  async listOverlays(): Promise<OverlayRecord[]> {
    const overlays: OverlayRecord[] = [];
    for (const name of await listNames(this.overlayFolder())) {
      if (!name.endsWith(".json")) continue;
      const record = await readJson<OverlayRecord>(join(this.overlayFolder(), name));
      if (record) overlays.push(record);
    }
    return overlays;
  }

  async removeOverlayRecord(id: string): Promise<void> {
    await rm(this.overlayRecordFile(id), { force: true });
  }
}
