/**
 * Pulling an image into the blob cache: resolve the manifest (through an
 * index for the requested platform), fetch the config, then download the
 * layers a few at a time, in manifest order. `pullImage` resolves once the
 * config is cached and hands out one promise per layer, so a caller can
 * convert layer 1 while later layers still download.
 */

import { mkdir, readFile, stat } from "node:fs/promises";
import { dirname } from "node:path";

import { RegistryError } from "../errors.js";
import { writeFileAtomic } from "../store/atomic.js";
import type { BlobCache } from "./blob-cache.js";
import { toBlobCache } from "./blob-cache.js";
import { fetchBlob } from "./blob-download.js";
import type { RegistryClientOptions } from "./client.js";
import { RegistryClient } from "./client.js";
import type { Descriptor, FetchedManifest, ImageManifest } from "./manifest.js";
import { fetchManifest, selectPlatform } from "./manifest.js";
import type { Platform } from "./platform.js";
import { hostPlatform, parsePlatform } from "./platform.js";
import { createLimiter } from "./limiter.js";
import type { PullProgress } from "./progress.js";
import { ProgressTracker } from "./progress.js";
import type { ImageReference } from "./reference.js";
import { formatReference, manifestSelector, parseReference } from "./reference.js";
import { DEFAULT_RETRY_POLICY } from "./retry.js";

export interface PullOptions extends RegistryClientOptions {
  /**
   * Folder (blobs go to `DIR/blobs/sha256/HEX`) or a cache such as a `Store`.
   * NOTE: pullImage takes no store lock. With a `Store`, the caller must hold
   * the store-use lock shared until `done` settles, as conversions do, or a
   * concurrent prune can delete the pull's temporary files and new blobs.
   */
  blobCache: string | BlobCache;
  /** Platform to pick from an index, such as `linux/arm64`. Defaults to Linux on the host's architecture. */
  platform?: string | Platform;
  /** Layers downloaded at once. Defaults to 3. */
  concurrency?: number;
  onProgress?: (event: PullProgress) => void;
  signal?: AbortSignal;
}

export interface PulledLayer {
  index: number;
  descriptor: Descriptor;
  /** Final path of the blob in the cache. The file exists once `ready` resolves. */
  file: string;
  /** Resolves with `file` once the blob is verified on disk; rejects with a `RegistryError`. */
  ready: Promise<string>;
}

export interface PulledImage {
  reference: ImageReference;
  /** Reference in full, such as `docker.io/library/alpine:latest`. */
  name: string;
  /** Digest of the image manifest received. */
  manifestDigest: string;
  manifestMediaType: string;
  manifest: ImageManifest;
  /** Digest of the index the manifest was chosen from, when the reference named an index. */
  indexDigest?: string;
  /** Platform of the manifest from its index entry. Undefined when the reference named a manifest. */
  platform?: Platform;
  configDescriptor: Descriptor;
  configFile: string;
  /** The image config JSON, as the OCI image spec defines it. */
  config: ImageConfig;
  layers: PulledLayer[];
  /** Resolves when every layer is cached. Rejects with the first failure once every download has stopped. */
  done: Promise<void>;
}

export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: Record<string, unknown>;
  rootfs?: { type?: string; diff_ids?: string[] };
  [field: string]: unknown;
}

export const DEFAULT_CONCURRENCY = 3;

/** Maximum index levels followed to reach a manifest, so an index may contain indexes only one level deep. */
const MAX_INDEX_DEPTH = 2;

interface PullContext {
  client: RegistryClient;
  reference: ImageReference;
  name: string;
  cache: BlobCache;
  options: PullOptions;
}

/**
 * Pulls `reference` into the blob cache. Resolves with the manifest, the
 * parsed config and one pending download per layer. Blobs already cached are
 * not downloaded again. Rejects with a `RegistryError` if the manifest or
 * config cannot be fetched and verified.
 */
export async function pullImage(reference: string | ImageReference, options: PullOptions): Promise<PulledImage> {
  const parsed = typeof reference === "string" ? parseReference(reference) : reference;
  const context: PullContext = {
    client: new RegistryClient(parsed.registry, options),
    reference: parsed,
    name: formatReference(parsed),
    cache: toBlobCache(options.blobCache),
    options,
  };

  let image: Omit<PulledImage, "layers" | "done">;
  try {
    image = await resolveImage(context);
  } catch (error) {
    context.client.close();
    throw error;
  }

  const { layers, done } = startLayerDownloads(context, image.manifest);
  done.then(
    () => context.client.close(),
    () => context.client.close(),
  );
  return { ...image, layers, done };
}

async function resolveImage(context: PullContext): Promise<Omit<PulledImage, "layers" | "done">> {
  const { client, reference, name, options } = context;
  const signal = options.signal;
  const requested = typeof options.platform === "string" ? parsePlatform(options.platform) : (options.platform ?? hostPlatform());

  let fetched: FetchedManifest = await fetchManifest(client, reference.repository, manifestSelector(reference), name, signal);
  let indexDigest: string | undefined;
  let platform: Platform | undefined;
  for (let depth = 0; fetched.kind === "index"; depth += 1) {
    if (depth >= MAX_INDEX_DEPTH) {
      throw new RegistryError("ERR_MANIFEST_INVALID", `${name}: indexes are nested more than ${MAX_INDEX_DEPTH} deep`, {
        reference: name,
        digest: fetched.digest,
      });
    }
    await cacheManifest(context, fetched);
    indexDigest ??= fetched.digest;
    const entry = selectPlatform(fetched.index, requested, name, fetched.digest);
    platform = entry.platform;
    fetched = await fetchManifest(client, reference.repository, entry.digest, name, signal, entry.size);
  }
  await cacheManifest(context, fetched);

  const manifest = fetched.manifest;
  const configFile = await fetchSmallBlob(context, manifest.config);
  const config = await readConfig(configFile, manifest, context, fetched.digest);

  const image: Omit<PulledImage, "layers" | "done"> = {
    reference,
    name,
    manifestDigest: fetched.digest,
    manifestMediaType: fetched.mediaType,
    manifest,
    configDescriptor: manifest.config,
    configFile,
    config,
  };
  if (indexDigest !== undefined) image.indexDigest = indexDigest;
  if (platform !== undefined) image.platform = { ...platform };
  return image;
}

/** Writes the verified manifest or index bytes to the cache under their digest. */
async function cacheManifest(context: PullContext, fetched: FetchedManifest): Promise<void> {
  const file = context.cache.blobFile(fetched.digest);
  const size = await stat(file).then((info) => info.size, () => undefined);
  if (size === fetched.bytes.length) return;
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomic(file, fetched.bytes);
}

async function fetchSmallBlob(context: PullContext, descriptor: Descriptor): Promise<string> {
  const result = await fetchBlob({
    client: context.client,
    repository: context.reference.repository,
    reference: context.name,
    descriptor,
    cache: context.cache,
    maxResumes: context.options.retry?.attempts ?? DEFAULT_RETRY_POLICY.attempts,
    ...(context.options.signal === undefined ? {} : { signal: context.options.signal }),
  });
  return result.file;
}

async function readConfig(file: string, manifest: ImageManifest, context: PullContext, manifestDigest: string): Promise<ImageConfig> {
  let config: ImageConfig;
  try {
    config = JSON.parse(await readFile(file, "utf8")) as ImageConfig;
  } catch (error) {
    throw new RegistryError("ERR_MANIFEST_INVALID", `config ${manifest.config.digest} of ${context.name} is not valid JSON`, {
      reference: context.name,
      digest: manifest.config.digest,
      cause: error,
    });
  }
  const diffIds = config.rootfs?.diff_ids;
  if (Array.isArray(diffIds) && diffIds.length !== manifest.layers.length) {
    throw new RegistryError(
      "ERR_MANIFEST_INVALID",
      `manifest ${manifestDigest} of ${context.name} lists ${manifest.layers.length} layers, but its config lists ${diffIds.length} diff_ids`,
      { reference: context.name, digest: manifestDigest },
    );
  }
  return config;
}

/** Starts every layer download, at most `concurrency` at a time and in manifest order. */
function startLayerDownloads(context: PullContext, manifest: ImageManifest): { layers: PulledLayer[]; done: Promise<void> } {
  const { options } = context;
  const concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
  const tracker = new ProgressTracker(manifest.layers, options.onProgress);

  // One failed layer cancels the others, which then reject with that failure.
  const cancel = new AbortController();
  const signal = options.signal === undefined ? cancel.signal : AbortSignal.any([cancel.signal, options.signal]);
  let firstError: unknown;

  const limit = createLimiter(concurrency);

  const layers = manifest.layers.map((descriptor, index): PulledLayer => {
    const file = context.cache.blobFile(descriptor.digest);
    const ready = limit(async () => {
      try {
        if (firstError !== undefined) throw firstError;
        const result = await fetchBlob({
          client: context.client,
          repository: context.reference.repository,
          reference: context.name,
          descriptor,
          cache: context.cache,
          maxResumes: options.retry?.attempts ?? DEFAULT_RETRY_POLICY.attempts,
          signal,
          onBytes: (bytes) => tracker.update(index, bytes),
        });
        tracker.finish(index, result.cached);
        return result.file;
      } catch (error) {
        firstError ??= error;
        cancel.abort(firstError);
        throw options.signal?.aborted ? error : firstError;
      }
    });
    // The caller may await only some layers, so a rejection here must not go unhandled. `done` still reports it.
    ready.catch(() => undefined);
    return { index, descriptor, file, ready };
  });

  // `done` waits for every download to settle, so after a failure no
  // temporary file is left when it rejects.
  const done = Promise.allSettled(layers.map((layer) => layer.ready)).then((results) => {
    if (results.some((result) => result.status === "rejected")) throw firstError;
  });
  done.catch(() => undefined);
  return { layers, done };
}
