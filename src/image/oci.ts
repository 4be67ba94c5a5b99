import { ImageError } from "../errors.js";
import { readBlob, type BlobLocation } from "./blob.js";
import { parseConfig, parseJson } from "./config.js";
import { chainIds, checkDigest } from "./digest.js";
import { isConfigMediaType, isIndexMediaType, isManifestMediaType, layerCompression } from "./media-types.js";
import { formatPlatform, platformMatches, type Platform } from "./platform.js";
import type { SourceKind } from "./reference.js";
import { blobPath, type ImageFiles } from "./store.js";
import type { ImageConfig, ResolvedImage, ResolvedLayer } from "./types.js";
import { verifyBuffer } from "./verify.js";

/** Bound on an index or manifest; the OCI distribution-spec lets registries reject larger ones (4 MiB). */
export const MAX_MANIFEST_BYTES = 4 << 20;
/** Bound on an image config, which grows with its history. */
export const MAX_CONFIG_BYTES = 32 << 20;
/** Bound on indexes nested inside indexes. */
const MAX_INDEX_DEPTH = 4;
/** OCI image-spec, annotations.md: the tag of a manifest in an OCI layout's index.json. */
const REF_NAME = "org.opencontainers.image.ref.name";

/** OCI image-spec, descriptor.md. */
export interface Descriptor {
  mediaType?: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface ManifestSelector {
  tag?: string;
  digest?: string;
}

/** Resolves the image an OCI layout (directory or archive) holds for a tag, digest and platform. */
export async function resolveOciImage(
  files: ImageFiles,
  source: SourceKind,
  selector: ManifestSelector,
  platform: Platform,
): Promise<ResolvedImage> {
  const indexLocation = files.locate("index.json");
  if (indexLocation === undefined) {
    throw new ImageError("ERR_IMAGE_NOT_FOUND", `${files.file} is not an OCI layout: index.json is missing.`, { file: files.file });
  }
  const index = parseJson(await readBlob(indexLocation, MAX_MANIFEST_BYTES), `${files.file} index.json`);
  const listed = descriptorsOf(index, "index.json");

  const candidates = selectCandidates(files, listed, selector);
  const manifest = await selectManifest(files, candidates, platform, 0);
  return resolveManifest(files, source, manifest.descriptor, manifest.data);
}

function selectCandidates(files: ImageFiles, listed: Descriptor[], selector: ManifestSelector): Descriptor[] {
  if (selector.digest !== undefined) {
    const found = listed.filter((d) => d.digest === selector.digest);
    if (found.length > 0) return found.slice(0, 1);
    // A digest need not be listed in index.json if its blob is present.
    return [{ digest: selector.digest, size: -1 }];
  }

  const tags = [...new Set(listed.map((d) => d.annotations?.[REF_NAME]).filter((t): t is string => t !== undefined))];
  const tag = selector.tag ?? (new Set(listed.map((d) => d.digest)).size > 1 && tags.includes("latest") ? "latest" : undefined);
  if (tag === undefined) return listed;

  const tagged = listed.filter((d) => d.annotations?.[REF_NAME] === tag);
  if (tagged.length === 0) {
    throw new ImageError("ERR_IMAGE_TAG_NOT_FOUND", `Tag "${tag}" not found in ${files.file}; tags present: ${tags.join(", ") || "none"}.`, {
      file: files.file,
    });
  }
  return tagged;
}

/** Walks indexes down to the one manifest for `platform`. */
async function selectManifest(
  files: ImageFiles,
  candidates: Descriptor[],
  platform: Platform,
  depth: number,
): Promise<{ descriptor: Descriptor; data: Buffer }> {
  if (depth > MAX_INDEX_DEPTH) {
    throw new ImageError("ERR_IMAGE_INDEX_DEPTH", `Image indexes in ${files.file} are nested more than ${MAX_INDEX_DEPTH} deep.`, {
      file: files.file,
    });
  }

  const chosen = choosePlatform(files, candidates, platform);
  const data = await readVerifiedBlob(files, chosen, "manifest", MAX_MANIFEST_BYTES);
  const parsed = parseJson(data, `manifest ${chosen.digest}`, chosen.digest) as { mediaType?: string; manifests?: unknown; layers?: unknown };
  const mediaType = chosen.mediaType ?? parsed.mediaType ?? (parsed.manifests !== undefined ? "application/vnd.oci.image.index.v1+json" : undefined);

  if (isIndexMediaType(mediaType)) {
    return selectManifest(files, descriptorsOf(parsed, `index ${chosen.digest}`), platform, depth + 1);
  }
  if (isManifestMediaType(mediaType) || (mediaType === undefined && parsed.layers !== undefined)) {
    return { descriptor: { ...chosen, mediaType: mediaType ?? "application/vnd.oci.image.manifest.v1+json" }, data };
  }
  throw unsupportedMediaType(mediaType, chosen.digest);
}

/**
 * Picks the descriptor for `platform`. Entries without a platform are
 * taken only when no entry has one; entries for `unknown/unknown` are
 * BuildKit attestations, never images.
 */
function choosePlatform(files: ImageFiles, candidates: Descriptor[], platform: Platform): Descriptor {
  const withPlatform = candidates.filter((d) => d.platform !== undefined && d.platform.os !== "unknown");
  if (withPlatform.length === 0) {
    const digests = new Set(candidates.map((d) => d.digest));
    if (digests.size > 1) {
      throw new ImageError("ERR_IMAGE_AMBIGUOUS", `${files.file} lists ${digests.size} images; name one by tag or digest.`, { file: files.file });
    }
    return candidates[0] as Descriptor;
  }

  const matching = withPlatform.filter((d) => platformMatches(d.platform as Platform, platform));
  if (matching.length === 0) {
    const available = [...new Set(withPlatform.map((d) => formatPlatform(d.platform as Platform)))].join(", ");
    throw new ImageError(
      "ERR_IMAGE_PLATFORM_NOT_FOUND",
      `No image for platform ${formatPlatform(platform)} in ${files.file}; platforms available: ${available}.`,
      { file: files.file },
    );
  }
  // A partial export lists platforms whose blobs are absent; prefer one that is present.
  return matching.find((d) => files.locate(blobPath(d.digest)) !== undefined) ?? (matching[0] as Descriptor);
}

async function resolveManifest(files: ImageFiles, source: SourceKind, descriptor: Descriptor, data: Buffer): Promise<ResolvedImage> {
  const manifest = parseJson(data, `manifest ${descriptor.digest}`, descriptor.digest) as { config?: unknown; layers?: unknown };
  const configDescriptor = checkDescriptor(manifest.config, `manifest ${descriptor.digest} config`);
  if (!isConfigMediaType(configDescriptor.mediaType)) throw unsupportedMediaType(configDescriptor.mediaType, configDescriptor.digest);
  if (!Array.isArray(manifest.layers)) {
    throw new ImageError("ERR_IMAGE_INVALID_MANIFEST", `Manifest ${descriptor.digest} has no layers list.`, { digest: descriptor.digest });
  }

  const configData = await readVerifiedBlob(files, configDescriptor, "config", MAX_CONFIG_BYTES);
  const config = parseConfig(configData, configDescriptor.digest);
  const layerDescriptors = manifest.layers.map((l, i) => checkDescriptor(l, `manifest ${descriptor.digest} layers[${i}]`));
  const layers = resolveLayers(files, layerDescriptors, config, descriptor.digest);

  const image: ResolvedImage = {
    source,
    file: files.file,
    manifestDigest: descriptor.digest,
    configDigest: configDescriptor.digest,
    config,
    platform: platformOf(config),
    diffIds: config.rootfs.diff_ids,
    chainIds: chainIds(config.rootfs.diff_ids),
    layers,
    manifestBytes: data,
    configBytes: configData,
  };
  if (descriptor.mediaType !== undefined) image.manifestMediaType = descriptor.mediaType;
  return image;
}

function resolveLayers(files: ImageFiles, descriptors: Descriptor[], config: ImageConfig, manifestDigest: string): ResolvedLayer[] {
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== descriptors.length) {
    throw new ImageError(
      "ERR_IMAGE_LAYER_COUNT",
      `Manifest ${manifestDigest} lists ${descriptors.length} layers but its config lists ${diffIds.length} diff_ids.`,
      { digest: manifestDigest },
    );
  }
  const chain = chainIds(diffIds);

  return descriptors.map((descriptor, index) => {
    const mediaType = descriptor.mediaType ?? "";
    const compression = layerCompression(mediaType);
    if (compression === undefined) throw unsupportedMediaType(mediaType, descriptor.digest);
    return {
      index,
      mediaType,
      compression,
      digest: descriptor.digest,
      size: descriptor.size,
      diffId: diffIds[index] as string,
      chainId: chain[index] as string,
      location: locateBlob(files, descriptor.digest, "layer"),
    };
  });
}

/** Reads a small blob and checks its digest, and its size unless the size is unknown (-1). */
async function readVerifiedBlob(files: ImageFiles, descriptor: Descriptor, kind: string, maxBytes: number): Promise<Buffer> {
  const location = locateBlob(files, descriptor.digest, kind);
  const data = await readBlob(location, maxBytes, descriptor.digest);
  const options = { digest: descriptor.digest, subject: kind, file: files.file };
  verifyBuffer(data, descriptor.size >= 0 ? { ...options, size: descriptor.size } : options);
  return data;
}

function locateBlob(files: ImageFiles, digest: string, kind: string): BlobLocation {
  const location = files.locate(blobPath(digest));
  if (location === undefined) {
    throw new ImageError("ERR_IMAGE_BLOB_NOT_FOUND", `The ${kind} blob ${digest} is missing from ${files.file}.`, {
      digest,
      file: files.file,
    });
  }
  return location;
}

function descriptorsOf(index: unknown, where: string): Descriptor[] {
  const manifests = (index as { manifests?: unknown }).manifests;
  if (!Array.isArray(manifests)) throw new ImageError("ERR_IMAGE_INVALID_INDEX", `${where} has no manifests list.`);
  return manifests.map((d, i) => checkDescriptor(d, `${where} manifests[${i}]`));
}

function checkDescriptor(value: unknown, where: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (typeof d !== "object" || d === null) throw new ImageError("ERR_IMAGE_INVALID_DESCRIPTOR", `${where} is not a descriptor.`);
  checkDigest(d.digest, where);
  if (typeof d.size !== "number" || !Number.isSafeInteger(d.size) || d.size < 0) {
    throw new ImageError("ERR_IMAGE_INVALID_DESCRIPTOR", `${where} has an invalid size ${JSON.stringify(d.size)}.`, { digest: d.digest as string });
  }
  return d as Descriptor;
}

export function platformOf(config: ImageConfig): Platform {
  const platform: Platform = { os: config.os, architecture: config.architecture };
  if (typeof config.variant === "string" && config.variant !== "") platform.variant = config.variant;
  return platform;
}

export function unsupportedMediaType(mediaType: string | undefined, digest: string): ImageError {
  return new ImageError("ERR_IMAGE_UNSUPPORTED_MEDIA_TYPE", `Unsupported media type "${mediaType ?? "(none)"}" for blob ${digest}.`, { digest });
}
