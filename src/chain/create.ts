/**
 * createChain: the main entry point. Reads an image, converts the layers the
 * store does not have yet, and returns a new writable overlay over them.
 */

import { existsSync } from "node:fs";

import { LayerdiskError } from "../errors.js";
import type { ResolvedImage } from "../image/types.js";
import { writeFileAtomic } from "../store/atomic.js";
import { withSharedFileLock } from "../store/lock.js";
import { conversionParameters, parametersId as computeParametersId, type ConversionParameters } from "../store/parameters.js";
import { STORE_USE_LOCK } from "../store/prune.js";
import type { ImageRecord } from "../store/records.js";
import { Store } from "../store/store.js";
import { vmmRecipes, type VmmRecipes } from "../vmm/recipes.js";
import { limitChainDepth, resolveMaxDepth, type MaxDepthPreset } from "./depth.js";
import { ensureLayer } from "./layers.js";
import { openImage, type OpenedImage, type RegistryOptions } from "./open-image.js";
import { createOverlay } from "./overlay.js";
import type { ChainProgress, ChainResult } from "./types.js";

/**
 * Registry options (`credentials`, `insecureRegistries`, `httpsRegistries`,
 * `tls`, `dockerConfig`, `timeouts`, `retry`, `concurrency`) apply when `imageRef` is a registry
 * reference; see `classifyReference` for how a reference is classified.
 */
export interface CreateChainOptions extends RegistryOptions {
  /** Cancels the work; a layer being converted is discarded. */
  signal?: AbortSignal;
  onProgress?: (event: ChainProgress) => void;
  /** Platform to pick from an image index, as `os/arch[/variant]`; defaults to this host's. */
  platform?: string;
  /** ext4 filesystem and disk size in bytes; default 64 GiB, sparse. */
  fsSize?: number;
  /** qcow2 cluster size in bytes, a power of two from 512 to 2 MiB; default 64 KiB. */
  clusterSize?: number;
  /** The store, or its root folder; default as `defaultStoreRoot()`. */
  store?: Store | string;
  /** Path of the overlay file; by default in the store's `overlays/` folder. */
  disk?: string;
  /**
   * Maximum number of files in the chain the VMM opens, the overlay
   * included, or a VMM preset name. Upper layers beyond it are merged
   * into one file. Default: no limit.
   */
  maxDepth?: number | MaxDepthPreset;
}

export interface CreateChainResult extends ChainResult {
  /** Arguments that attach `disk` as the guest's root disk in each VMM. */
  vmm: VmmRecipes;
}

function platformName(image: ResolvedImage): string {
  const { os, architecture, variant } = image.platform;
  return variant ? `${os}/${architecture}/${variant}` : `${os}/${architecture}`;
}

async function openStore(store: Store | string | undefined): Promise<Store> {
  if (store instanceof Store) return store.open();
  return new Store(store).open();
}

export async function createChain(imageRef: string, options: CreateChainOptions = {}): Promise<CreateChainResult> {
  const store = await openStore(options.store);
  const parameters = conversionParameters(options);
  const parametersId = computeParametersId(parameters);
  const maxDepth = resolveMaxDepth(options.maxDepth);

  // Shared with other conversions, exclusive with prune: nothing this call
  // publishes can be pruned before its image record and overlay exist.
  return withSharedFileLock(store.lockFile(STORE_USE_LOCK), async () => {
    options.signal?.throwIfAborted();
    const opened = await openImage(store, imageRef, {
      platform: options.platform,
      signal: options.signal,
      registry: options,
      onDownload: (event) => options.onProgress?.({ type: "download", ...event }),
    });
    const image = opened.image;
    const manifestDigest = image.manifestDigest ?? image.configDigest;
    const topChainId = image.chainIds.at(-1);
    if (topChainId === undefined) {
      throw new LayerdiskError("ERR_IMAGE_NO_LAYERS", `image ${imageRef} has no layers; layerdisk needs at least one to build a filesystem`);
    }
    options.onProgress?.({ type: "resolved", reference: imageRef, manifestDigest, layers: image.layers.length });
    await cacheMetadataBlobs(store, image);

    const layerFiles = await convertLayers(store, parameters, parametersId, opened, options);

    const record: ImageRecord = {
      reference: imageRef,
      platform: platformName(image),
      manifestDigest,
      configDigest: image.configDigest,
      layerDigests: image.layers.flatMap((layer) => (layer.digest === undefined ? [] : [layer.digest])),
      parametersId,
      chainIds: image.chainIds,
      config: image.config.config ?? {},
      createdAt: new Date().toISOString(),
    };
    await store.writeImage(record);

    const { chain, mergedKey } = await limitChainDepth(store, parametersId, image.chainIds, layerFiles, maxDepth);
    const overlay = await createOverlay(store, {
      reference: imageRef,
      parametersId,
      topChainId,
      mergedKey,
      virtualSize: parameters.fsSize,
      clusterSize: parameters.clusterSize,
      disk: options.disk,
    });
    options.onProgress?.({ type: "overlay", disk: overlay.disk });

    return {
      reference: imageRef,
      platform: record.platform,
      disk: overlay.disk,
      overlayId: overlay.id,
      chain,
      layerFiles,
      chainIds: image.chainIds,
      imageConfig: record.config,
      manifestDigest,
      configDigest: image.configDigest,
      virtualSize: parameters.fsSize,
      fsType: "ext4",
      vmm: vmmRecipes(overlay.disk, chain),
    };
  });
}

/**
 * Keeps the manifest and config in the store's blob cache by digest, so an
 * image record stays inspectable after its source archive is gone. Layer
 * blobs of local images are read in place and not copied.
 */
async function cacheMetadataBlobs(store: Store, image: ResolvedImage): Promise<void> {
  const blobs: Array<[string | undefined, Buffer | undefined]> = [
    [image.manifestDigest, image.manifestBytes],
    [image.configDigest, image.configBytes],
  ];
  for (const [digest, bytes] of blobs) {
    if (digest === undefined || bytes === undefined || existsSync(store.blobFile(digest))) continue;
    await writeFileAtomic(store.blobFile(digest), bytes);
  }
}

/**
 * Converts every layer in order, each as soon as its blob is on disk, and
 * returns the layer files bottom to top. A failure stops a running pull
 * and waits for it, so no download is left writing to the store.
 */
async function convertLayers(
  store: Store,
  parameters: ConversionParameters,
  parametersId: string,
  opened: OpenedImage,
  options: CreateChainOptions,
): Promise<string[]> {
  const { image } = opened;
  const files: string[] = [];
  let parentChainId: string | null = null;
  try {
    for (const layer of image.layers) {
      const report = (state: ChainProgress & { type: "layer" }) => options.onProgress?.(state);
      await opened.layerReady(layer.index);
      const ensured = await ensureLayer(store, parameters, parametersId, layer, parentChainId, {
        signal: options.signal,
        onState: (state, bytesDone) =>
          report({ type: "layer", index: layer.index, count: image.layers.length, chainId: layer.chainId, state, bytesDone }),
      });
      files.push(ensured.file);
      parentChainId = layer.chainId;
    }
    await opened.finish();
  } catch (error) {
    await opened.cancel(error);
    throw error;
  }
  return files;
}
