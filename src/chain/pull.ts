/**
 * `pullToStore`: downloads an image into the store's blob cache without
 * converting it, and records it so that prune keeps its blobs.
 */

import { InvalidArgumentError } from "../errors.js";
import { formatPlatform } from "../registry/platform.js";
import type { PullProgress } from "../registry/progress.js";
import { withSharedFileLock } from "../store/lock.js";
import { STORE_USE_LOCK } from "../store/prune.js";
import type { PullRecord } from "../store/records.js";
import { Store } from "../store/store.js";
import { startPull, type RegistryOptions } from "./open-image.js";
import { classifyReference } from "./source.js";

export interface PullToStoreOptions extends RegistryOptions {
  /** The store, or its root folder; default as `defaultStoreRoot()`. */
  store?: Store | string;
  /** Platform to pick from an image index, as `os/arch[/variant]`; defaults to Linux on this host's architecture. */
  platform?: string;
  signal?: AbortSignal;
  onProgress?: (event: PullProgress) => void;
}

/**
 * Pulls `reference` into the store and writes its pull record. Holds the
 * store-use lock shared until every download has stopped, so prune never
 * deletes a blob or temporary file the pull is writing.
 */
export async function pullToStore(reference: string, options: PullToStoreOptions = {}): Promise<PullRecord> {
  const source = classifyReference(reference);
  if (source.kind !== "registry") {
    throw new InvalidArgumentError(
      "ERR_REFERENCE_NOT_REGISTRY",
      `"${reference}" names an image on disk, not in a registry; use "docker://${reference}" to force a registry reference`,
    );
  }
  const store = options.store instanceof Store ? await options.store.open() : await new Store(options.store).open();

  return withSharedFileLock(store.lockFile(STORE_USE_LOCK), async () => {
    const signal = options.signal ?? new AbortController().signal;
    const pulled = await startPull(store, source.reference, { platform: options.platform, registry: options, onDownload: options.onProgress }, signal);
    await pulled.done;

    const config = pulled.config;
    const platform =
      config.os !== undefined && config.architecture !== undefined
        ? formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) })
        : pulled.platform === undefined
          ? "unknown"
          : formatPlatform(pulled.platform);
    const record: PullRecord = {
      reference,
      name: pulled.name,
      platform,
      ...(pulled.indexDigest === undefined ? {} : { indexDigest: pulled.indexDigest }),
      manifestDigest: pulled.manifestDigest,
      configDigest: pulled.configDescriptor.digest,
      layerDigests: pulled.layers.map((layer) => layer.descriptor.digest),
      createdAt: new Date().toISOString(),
    };
    await store.writePull(record);
    return record;
  });
}
