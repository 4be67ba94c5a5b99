import { ImageError } from "../errors.js";
import { readBlob, type BlobLocation } from "./blob.js";
import { readBlobHead } from "./blob-head.js";
import { parseConfig, parseJson } from "./config.js";
import { chainIds, sha256Digest } from "./digest.js";
import { sniffCompression } from "./media-types.js";
import { MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, platformOf } from "./oci.js";
import type { ArchiveFiles } from "./store.js";
import type { ResolvedImage, ResolvedLayer } from "./types.js";
import { verifyBuffer } from "./verify.js";

/** One entry of a legacy `docker save` manifest.json. */
interface LegacyManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

/** A file name that is a sha256 hex digest, as skopeo and Docker name configs and layer blobs. */
const HEX_NAME = /(?:^|\/)([a-f0-9]{64})(?:\.json|\.tar)?$/;

/**
 * Resolves the image of a legacy `docker save` archive, which has a
 * manifest.json but no manifest blob. Its layer blobs are plain or
 * compressed tars; compression is read from their first bytes.
 */
export async function resolveDockerArchive(files: ArchiveFiles, imageName?: string): Promise<ResolvedImage> {
  const entry = await readLegacyManifest(files, imageName);
  const configLocation = locate(files, entry.Config, "config");
  const configData = await readBlob(configLocation, MAX_CONFIG_BYTES);
  const configDigest = sha256Digest(configData);
  checkNamedDigest(entry.Config, configData, "config", files.file);

  const config = parseConfig(configData, configDigest);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== entry.Layers.length) {
    throw new ImageError(
      "ERR_IMAGE_LAYER_COUNT",
      `${files.file} manifest.json lists ${entry.Layers.length} layers but config ${configDigest} lists ${diffIds.length} diff_ids.`,
      { file: files.file, digest: configDigest },
    );
  }

  const chain = chainIds(diffIds);
  const layers: ResolvedLayer[] = [];
  for (const [index, name] of entry.Layers.entries()) {
    const location = locate(files, name, "layer");
    const compression = sniffCompression(await readBlobHead(location, 4));
    const layer: ResolvedLayer = {
      index,
      mediaType: `application/vnd.docker.image.rootfs.diff.tar${compression === "none" ? "" : "." + compression}`,
      compression,
      size: location.length,
      diffId: diffIds[index] as string,
      chainId: chain[index] as string,
      location,
    };
    const named = HEX_NAME.exec(name);
    if (named !== null && !name.endsWith("/layer.tar")) layer.digest = `sha256:${named[1]}`;
    layers.push(layer);
  }

  return { source: "docker-archive", file: files.file, configDigest, config, platform: platformOf(config), diffIds, chainIds: chain, layers, configBytes: configData };
}

async function readLegacyManifest(files: ArchiveFiles, imageName: string | undefined): Promise<LegacyManifestEntry> {
  const location = locate(files, "manifest.json", "manifest.json");
  const parsed = parseJson(await readBlob(location, MAX_MANIFEST_BYTES), `${files.file} manifest.json`);
  if (!Array.isArray(parsed) || parsed.length === 0) {
    throw new ImageError("ERR_IMAGE_INVALID_MANIFEST", `${files.file} manifest.json lists no image.`, { file: files.file });
  }

  const entries = parsed as Array<Partial<LegacyManifestEntry>>;
  const tags = entries.map((e) => (e.RepoTags ?? []).join(" ") || "(untagged)").join(", ");
  const wanted = imageName === undefined ? undefined : normalizeImageName(imageName);
  const matching = wanted === undefined ? entries : entries.filter((e) => (e.RepoTags ?? []).some((t) => normalizeImageName(t) === wanted));
  if (matching.length === 0) {
    throw new ImageError("ERR_IMAGE_TAG_NOT_FOUND", `Image ${imageName} not found in ${files.file}; images present: ${tags}.`, { file: files.file });
  }
  if (matching.length > 1) {
    throw new ImageError("ERR_IMAGE_AMBIGUOUS", `${files.file} contains ${matching.length} images (${tags}); add :NAME:TAG to the reference to pick one.`, {
      file: files.file,
    });
  }

  const entry = matching[0] as Partial<LegacyManifestEntry>;
  if (typeof entry.Config !== "string" || !Array.isArray(entry.Layers) || !entry.Layers.every((l) => typeof l === "string")) {
    throw new ImageError("ERR_IMAGE_INVALID_MANIFEST", `${files.file} manifest.json has no Config or Layers.`, { file: files.file });
  }
  return entry as LegacyManifestEntry;
}

/**
 * Expands a Docker image name the way the Docker CLI does: no registry
 * means `docker.io`, a one-part name on Docker Hub is under `library/`,
 * and no tag means `latest`.
 */
export function normalizeImageName(name: string): string {
  const parts = name.split("/");
  const first = parts[0] as string;
  const hasRegistry = parts.length > 1 && (first.includes(".") || first.includes(":") || first === "localhost");
  if (!hasRegistry) parts.unshift("docker.io");
  if (parts[0] === "docker.io" && parts.length === 2) parts.splice(1, 0, "library");

  const last = parts.at(-1) as string;
  if (!last.includes(":") && !last.includes("@")) parts[parts.length - 1] = `${last}:latest`;
  return parts.join("/");
}

/** A config named after its digest must hash to that name. */
function checkNamedDigest(name: string, data: Buffer, subject: string, file: string): void {
  const named = HEX_NAME.exec(name);
  if (named !== null) verifyBuffer(data, { digest: `sha256:${named[1]}`, subject, file });
}

function locate(files: ArchiveFiles, name: string, kind: string): BlobLocation {
  const location = files.locate(name);
  if (location === undefined) {
    throw new ImageError("ERR_IMAGE_BLOB_NOT_FOUND", `The ${kind} ${name} is missing from ${files.file}.`, { file: files.file, path: name });
  }
  return location;
}
