/**
 * Opening the image createChain converts: resolved on disk, or pulled into
 * the store's blob cache. A pull runs in the background while layers are
 * converted, so `layerReady(i)` waits only for layer i's download.
 */

import { resolveImage } from "../image/resolve.js";
import type { ResolvedImage } from "../image/types.js";
import { pullImage, type PullOptions, type PulledImage } from "../registry/pull.js";
import type { PullProgress } from "../registry/progress.js";
import type { Store } from "../store/store.js";
import { classifyReference, resolvePulledImage } from "./source.js";

/** Registry options createChain and `pullToStore` pass through to `pullImage`. */
export type RegistryOptions = Pick<
  PullOptions,
  "credentials" | "dockerConfig" | "insecureRegistries" | "httpsRegistries" | "tls" | "timeouts" | "retry" | "concurrency"
>;

export interface OpenImageOptions {
  platform?: string;
  signal?: AbortSignal;
  registry?: RegistryOptions;
  onDownload?: (event: PullProgress) => void;
}

export interface OpenedImage {
  image: ResolvedImage;
  /** The pull, when the image came from a registry. */
  pulled?: PulledImage;
  /** Resolves once layer `index`'s blob is on disk. */
  layerReady(index: number): Promise<void>;
  /** Waits for every download; rejects with the pull's first failure. */
  finish(): Promise<void>;
  /** Stops the downloads and waits until none writes to the cache any more. */
  cancel(reason: unknown): Promise<void>;
}

/** Opens `reference` from disk or, for a registry reference, starts pulling it into `store`. */
export async function openImage(store: Store, reference: string, options: OpenImageOptions): Promise<OpenedImage> {
  const source = classifyReference(reference);
  if (source.kind === "local") {
    const image = await resolveImage(source.reference, { platform: options.platform });
    return { image, layerReady: async () => {}, finish: async () => {}, cancel: async () => {} };
  }
  return openPulledImage(store, source.reference, options);
}

/** Starts a pull into the store, returning as soon as the manifest and config are cached. */
export async function startPull(store: Store, reference: string, options: OpenImageOptions, signal: AbortSignal): Promise<PulledImage> {
  return pullImage(reference, {
    ...options.registry,
    blobCache: store,
    signal,
    ...(options.platform === undefined ? {} : { platform: options.platform }),
    ...(options.onDownload === undefined ? {} : { onProgress: options.onDownload }),
  });
}

async function openPulledImage(store: Store, reference: string, options: OpenImageOptions): Promise<OpenedImage> {
  // A conversion failure stops the downloads through this controller.
  const controller = new AbortController();
  const signal = options.signal === undefined ? controller.signal : AbortSignal.any([controller.signal, options.signal]);
  const pulled = await startPull(store, reference, options, signal);
  const settled = pulled.done.then(
    () => {},
    () => {},
  );

  let image: ResolvedImage;
  try {
    image = resolvePulledImage(pulled);
  } catch (error) {
    controller.abort(error);
    await settled;
    throw error;
  }

  return {
    image,
    pulled,
    layerReady: async (index) => {
      await pulled.layers[index]!.ready;
    },
    finish: () => pulled.done,
    cancel: async (reason) => {
      controller.abort(reason);
      await settled;
    },
  };
}
