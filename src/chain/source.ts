/**
 * Image sources for createChain: classification of a reference as on disk
 * or in a registry, and the `ResolvedImage` of a pulled image. Its layers
 * point at the cached blob files, so the conversion worker streams and
 * verifies them exactly as it does blobs of an OCI layout.
 */

import { existsSync } from "node:fs";

import { ImageError } from "../errors.js";
import { chainIds, checkDigest } from "../image/digest.js";
import { layerCompression } from "../image/media-types.js";
import type { ImageConfig, ResolvedImage, ResolvedLayer } from "../image/types.js";
import type { PulledImage } from "../registry/pull.js";
import { parseReference as parseRegistryReference } from "../registry/reference.js";

/** Prefix that marks a reference as a registry reference, as in skopeo's transport names. */
export const REGISTRY_PREFIX = "docker://";

const LOCAL_PREFIXES = ["oci-layout:", "oci-archive:", "docker-archive:"];

export type ImageSource = { kind: "local"; reference: string } | { kind: "registry"; reference: string };

/**
 * Classifies a reference, in this order:
 *
 * 1. `docker://REF` is a registry reference.
 * 2. `oci-layout:`, `oci-archive:` and `docker-archive:` name files on disk.
 * 3. A reference that starts with `/`, `.` or `~`, or names an existing
 *    path (with or without a trailing `:TAG` or `@DIGEST`), is on disk.
 * 4. Anything else that parses as a registry reference (`alpine`,
 *    `localhost:5000/repo:tag`) is a registry reference.
 * 5. The rest is treated as a path, so the error reports it as not found.
 */
export function classifyReference(reference: string): ImageSource {
  if (reference.startsWith(REGISTRY_PREFIX)) return { kind: "registry", reference: reference.slice(REGISTRY_PREFIX.length) };
  if (LOCAL_PREFIXES.some((prefix) => reference.startsWith(prefix))) return { kind: "local", reference };
  if (/^[/.~]/.test(reference) || namesLocalPath(reference)) return { kind: "local", reference };
  return parsesAsRegistryReference(reference) ? { kind: "registry", reference } : { kind: "local", reference };
}

function namesLocalPath(reference: string): boolean {
  const withoutDigest = reference.replace(/@[a-z0-9]+:[a-f0-9]+$/, "");
  const colon = withoutDigest.lastIndexOf(":");
  const candidates = [reference, withoutDigest, colon > 0 ? withoutDigest.slice(0, colon) : withoutDigest];
  return candidates.some((path) => existsSync(path));
}

function parsesAsRegistryReference(reference: string): boolean {
  try {
    parseRegistryReference(reference);
    return true;
  } catch {
    return false;
  }
}


/**
 * Builds the image the converter reads from a pull. Each layer's location
 * is its final blob file in the cache, which exists once the layer's
 * `ready` promise resolves. The worker checks the blob's digest and diff ID
 * again while it streams.
 */
export function resolvePulledImage(pulled: PulledImage): ResolvedImage {
  const config = pulled.config as ImageConfig;
  const where = `config ${pulled.configDescriptor.digest} of ${pulled.name}`;
  const diffIds = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.length !== pulled.layers.length) {
    throw new ImageError(
      "ERR_IMAGE_LAYER_COUNT",
      `${where} lists ${Array.isArray(diffIds) ? diffIds.length : "no"} diff_ids for ${pulled.layers.length} layers`,
      { digest: pulled.configDescriptor.digest },
    );
  }
  diffIds.forEach((diffId) => checkDigest(diffId, where));
  const chain = chainIds(diffIds);

  const layers = pulled.layers.map((layer, index): ResolvedLayer => {
    const { mediaType, digest, size } = layer.descriptor;
    const compression = layerCompression(mediaType);
    if (compression === undefined) {
      throw new ImageError("ERR_IMAGE_UNSUPPORTED_MEDIA_TYPE", `layer ${digest} of ${pulled.name} has media type ${mediaType}, which is not a layer type`, {
        digest,
      });
    }
    return {
      index,
      mediaType,
      compression,
      digest,
      size,
      diffId: diffIds[index]!,
      chainId: chain[index]!,
      location: { kind: "file", file: layer.file, offset: 0, length: size },
    };
  });

  return {
    source: "registry",
    file: pulled.name,
    manifestDigest: pulled.manifestDigest,
    manifestMediaType: pulled.manifestMediaType,
    configDigest: pulled.configDescriptor.digest,
    config,
    platform: {
      os: config.os ?? pulled.platform?.os ?? "linux",
      architecture: config.architecture ?? pulled.platform?.architecture ?? "unknown",
      ...(config.variant ?? pulled.platform?.variant ? { variant: config.variant ?? pulled.platform?.variant } : {}),
    },
    diffIds,
    chainIds: chain,
    layers,
  };
}
