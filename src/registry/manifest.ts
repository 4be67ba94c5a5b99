/**
 * Image manifests and indexes: OCI image spec v1 and Docker image manifest
 * v2 schema 2 with its manifest list. Docker schema 1 is rejected.
 */

import { createHash } from "node:crypto";

import { RegistryError } from "../errors.js";
import type { RegistryClient } from "./client.js";
import type { Platform } from "./platform.js";
import { formatPlatform, platformMatches } from "./platform.js";
import { readBody } from "./transport.js";

export const MEDIA_TYPE = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
} as const;

const INDEX_TYPES: readonly string[] = [MEDIA_TYPE.ociIndex, MEDIA_TYPE.dockerManifestList];
const MANIFEST_TYPES: readonly string[] = [MEDIA_TYPE.ociManifest, MEDIA_TYPE.dockerManifest];

/** `Accept` header value asking for every manifest type this client reads. */
export const MANIFEST_ACCEPT = [...MANIFEST_TYPES, ...INDEX_TYPES].join(", ");

/** Maximum manifest size read, in bytes, which bounds the memory spent on untrusted input. Image manifests are usually a few KiB. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const DIGEST = /^sha256:[0-9a-f]{64}$/;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform & { "os.version"?: string; "os.features"?: string[] };
  urls?: string[];
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

export type FetchedManifest =
  | { kind: "manifest"; mediaType: string; digest: string; bytes: Buffer; manifest: ImageManifest }
  | { kind: "index"; mediaType: string; digest: string; bytes: Buffer; index: ImageIndex };

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function invalidManifest(reference: string, digest: string, reason: string): RegistryError {
  return new RegistryError("ERR_MANIFEST_INVALID", `manifest ${digest} of ${reference} is invalid: ${reason}`, {
    reference,
    digest,
  });
}

/** Checks a descriptor's required fields; only sha256 digests are accepted because the cache is keyed by them. */
function checkDescriptor(value: unknown, where: string, reference: string, digest: string): Descriptor {
  const descriptor = value as Partial<Descriptor> | null;
  if (descriptor === null || typeof descriptor !== "object") throw invalidManifest(reference, digest, `${where} is not an object`);
  if (typeof descriptor.digest !== "string" || !DIGEST.test(descriptor.digest)) {
    throw invalidManifest(reference, digest, `${where} has digest ${JSON.stringify(descriptor.digest)}, expected sha256: and 64 hex digits`);
  }
  if (typeof descriptor.size !== "number" || !Number.isSafeInteger(descriptor.size) || descriptor.size < 0) {
    throw invalidManifest(reference, digest, `${where} has size ${JSON.stringify(descriptor.size)}, expected a non-negative integer`);
  }
  if (typeof descriptor.mediaType !== "string") throw invalidManifest(reference, digest, `${where} has no mediaType`);
  return descriptor as Descriptor;
}

/**
 * Decodes manifest bytes. The media type comes from the document's
 * `mediaType` field, or the `Content-Type` header when the field is absent
 * (the OCI spec makes the field optional in older documents).
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined, reference: string, digest: string): FetchedManifest {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(bytes.toString("utf8")) as Record<string, unknown>;
  } catch (error) {
    throw invalidManifest(reference, digest, `not valid JSON (${(error as Error).message})`);
  }
  if (json === null || typeof json !== "object") throw invalidManifest(reference, digest, "not a JSON object");

  const headerType = contentType?.split(";")[0]?.trim();
  const mediaType = typeof json.mediaType === "string" ? json.mediaType : (headerType ?? "");
  if (json.schemaVersion !== 2) {
    throw new RegistryError(
      "ERR_MANIFEST_UNSUPPORTED",
      `manifest ${digest} of ${reference} has schemaVersion ${JSON.stringify(json.schemaVersion)}; only schema 2 (OCI or Docker) is supported`,
      { reference, digest },
    );
  }

  const isIndex = INDEX_TYPES.includes(mediaType) || (!MANIFEST_TYPES.includes(mediaType) && Array.isArray(json.manifests));
  if (isIndex) {
    if (!Array.isArray(json.manifests)) throw invalidManifest(reference, digest, "the index has no manifests array");
    json.manifests.forEach((entry, i) => checkDescriptor(entry, `manifests[${i}]`, reference, digest));
    return { kind: "index", mediaType, digest, bytes, index: json as unknown as ImageIndex };
  }

  if (!MANIFEST_TYPES.includes(mediaType) && !("config" in json)) {
    throw new RegistryError("ERR_MANIFEST_UNSUPPORTED", `manifest ${digest} of ${reference} has unsupported media type "${mediaType}"`, {
      reference,
      digest,
    });
  }
  checkDescriptor(json.config, "config", reference, digest);
  if (!Array.isArray(json.layers)) throw invalidManifest(reference, digest, "the manifest has no layers array");
  json.layers.forEach((entry, i) => checkDescriptor(entry, `layers[${i}]`, reference, digest));
  return { kind: "manifest", mediaType, digest, bytes, manifest: json as unknown as ImageManifest };
}

/**
 * Fetches a manifest by tag or digest and verifies it. When `selector` is a
 * digest, the content must hash to it. When it is a tag, the content must
 * match the `Docker-Content-Digest` header if the registry sends one. The
 * returned `digest` is always the hash of the bytes received. When the
 * manifest comes from an index entry, `expectedSize` is the entry's size.
 */
export async function fetchManifest(
  client: RegistryClient,
  repository: string,
  selector: string,
  reference: string,
  signal?: AbortSignal,
  expectedSize?: number,
): Promise<FetchedManifest> {
  const byDigest = DIGEST.test(selector);
  const context = { reference, object: `manifest ${selector}`, ...(byDigest ? { digest: selector } : {}) };
  const request = {
    path: `/v2/${repository}/manifests/${selector}`,
    headers: { accept: MANIFEST_ACCEPT },
    scope: `repository:${repository}:pull`,
    context,
    ...(signal === undefined ? {} : { signal }),
  };
  const response = await client.request(request);

  let bytes: Buffer;
  try {
    bytes = await readBody(response, MAX_MANIFEST_BYTES);
  } catch (error) {
    if (error instanceof RangeError) {
      throw new RegistryError("ERR_MANIFEST_INVALID", `manifest ${selector} of ${reference} is larger than ${MAX_MANIFEST_BYTES} bytes`, {
        reference,
        ...(byDigest ? { digest: selector } : {}),
      });
    }
    throw client.networkError(error, { context });
  }

  if (expectedSize !== undefined && bytes.length !== expectedSize) {
    throw new RegistryError(
      "ERR_SIZE_MISMATCH",
      `manifest ${selector} of ${reference} is ${bytes.length} bytes, but its index entry gives ${expectedSize}`,
      { reference, digest: selector },
    );
  }

  const actual = sha256Digest(bytes);
  const headerDigest = response.headers["docker-content-digest"];
  const expected = byDigest ? selector : typeof headerDigest === "string" && headerDigest.startsWith("sha256:") ? headerDigest : undefined;
  if (expected !== undefined && actual !== expected) {
    throw new RegistryError(
      "ERR_DIGEST_MISMATCH",
      `manifest ${selector} of ${reference} has digest ${actual}, but ${byDigest ? "the reference" : "the registry"} gives ${expected}`,
      { reference, digest: expected },
    );
  }
  return parseManifest(bytes, response.headers["content-type"], reference, actual);
}

/**
 * Picks the manifest for `requested` from an index. Entries that are not image
 * manifests (such as attestations, whose platform is `unknown/unknown`) are
 * skipped. Throws `ERR_PLATFORM_NOT_FOUND` listing the platforms present.
 */
export function selectPlatform(index: ImageIndex, requested: Platform, reference: string, indexDigest: string): Descriptor {
  const candidates = index.manifests.filter(
    (entry) => entry.platform !== undefined && entry.platform.os !== "unknown" && MANIFEST_TYPES.concat(INDEX_TYPES).includes(entry.mediaType),
  );
  const match = candidates.find((entry) => platformMatches(requested, entry.platform!));
  if (match !== undefined) return match;

  const available = candidates.map((entry) => formatPlatform(entry.platform!));
  throw new RegistryError(
    "ERR_PLATFORM_NOT_FOUND",
    `${reference} (index ${indexDigest}) has no image for platform ${formatPlatform(requested)}; available: ${available.length > 0 ? available.join(", ") : "none"}. ` +
      "Pass the platform option to pick one of them",
    { reference, digest: indexDigest },
  );
}
