/**
 * createChain: the main entry point. Reads an image, converts the layers the
 * store does not have yet, and returns a new writable overlay over them.
 */

import { LayerdiskError } from "../errors.js";
import { resolveImage } from "../image/resolve.js";
import type { ResolvedImage } from "../image/types.js";
import { withSharedFileLock } from "../store/lock.js";
import { conversionParameters, parametersId as computeParametersId } from "../store/parameters.js";
import { STORE_USE_LOCK } from "../store/prune.js";
import type { ImageRecord } from "../store/records.js";
import { Store } from "../store/store.js";
import { vmmRecipes, type VmmRecipes } from "../vmm/recipes.js";
import { ensureLayer } from "./layers.js";
import { createOverlay } from "./overlay.js";
import type { ChainProgress, ChainResult } from "./types.js";

export interface CreateChainOptions {
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
  /** Where to write the overlay; by default in the store's `overlays/` folder. */
  disk?: string;
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

  // Shared with other conversions, exclusive with prune: nothing this call
  // publishes can be pruned before its image record and overlay exist.
  return withSharedFileLock(store.lockFile(STORE_USE_LOCK), async () => {
    options.signal?.throwIfAborted();
    const image = await resolveImage(imageRef, { platform: options.platform });
    const manifestDigest = image.manifestDigest ?? image.configDigest;
    options.onProgress?.({ type: "resolved", reference: imageRef, manifestDigest, layers: image.layers.length });

    const chain: string[] = [];
    let parentChainId: string | null = null;
    for (const layer of image.layers) {
      const report = (state: ChainProgress & { type: "layer" }) => options.onProgress?.(state);
      const ensured = await ensureLayer(store, parameters, parametersId, layer, parentChainId, {
        signal: options.signal,
        onState: (state, bytesDone) =>
          report({ type: "layer", index: layer.index, count: image.layers.length, chainId: layer.chainId, state, bytesDone }),
      });
      chain.push(ensured.file);
      parentChainId = layer.chainId;
    }

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

    const topChainId = image.chainIds.at(-1);
    if (topChainId === undefined) {
      throw new LayerdiskError("ERR_IMAGE_NO_LAYERS", `image ${imageRef} has no layers; layerdisk needs at least one to build a filesystem`);
    }
    const overlay = await createOverlay(store, {
      reference: imageRef,
      parametersId,
      topChainId,
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
