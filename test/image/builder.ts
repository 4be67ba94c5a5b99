import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

import tarStream from "tar-stream";

import type { ImageError } from "../../src/errors.js";

/** One member of a hand-built tar; `type` defaults to a file. */
export interface TarMember {
  name: string;
  type?: "file" | "directory" | "symlink" | "link" | "character-device" | "block-device" | "fifo";
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  pax?: Record<string, string>;
  devmajor?: number;
  devminor?: number;
}

/** Packs members into a tar with tar-stream. */
export async function makeTar(members: TarMember[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const parts: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on("data", (chunk: unknown) => parts.push(chunk as Buffer));
    pack.on("end", () => resolve());
    pack.on("error", reject);
  });
  for (const member of members) {
    const content = typeof member.content === "string" ? Buffer.from(member.content) : (member.content ?? Buffer.alloc(0));
    const header = {
      name: member.name,
      type: member.type ?? "file",
      mode: member.mode ?? (member.type === "directory" ? 0o755 : 0o644),
      uid: member.uid ?? 0,
      gid: member.gid ?? 0,
      mtime: member.mtime ?? new Date(1_700_000_000_000),
      ...(member.linkname === undefined ? {} : { linkname: member.linkname }),
      ...(member.pax === undefined ? {} : { pax: member.pax }),
      devmajor: member.devmajor ?? 0,
      devminor: member.devminor ?? 0,
    };
    const isFile = member.type === undefined || member.type === "file";
    if (isFile) pack.entry(header as never, content);
    else pack.entry(header as never);
  }
  pack.finalize();
  await done;
  return Buffer.concat(parts);
}

export type Compression = "none" | "gzip" | "zstd";

export function compress(data: Buffer, compression: Compression): Buffer {
  if (compression === "gzip") return gzipSync(data);
  if (compression === "zstd") return execFileSync("zstd", ["-q", "-c"], { input: data, maxBuffer: 1 << 30 });
  return data;
}

export function sha256(data: Buffer | string): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

const LAYER_TYPES: Record<Compression, string> = {
  none: "application/vnd.oci.image.layer.v1.tar",
  gzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  zstd: "application/vnd.oci.image.layer.v1.tar+zstd",
};

export interface LayerSpec {
  tar: Buffer;
  compression?: Compression;
  /** Overrides the media type written in the manifest. */
  mediaType?: string;
  /** Overrides the diff_id written in the config. */
  diffId?: string;
  /** Changes the stored blob after its digest is taken (the digest then does not match). */
  tamper?: (blob: Buffer) => Buffer;
  /** Changes the compressed bytes before the digest is taken (the digest matches). */
  corrupt?: (blob: Buffer) => Buffer;
}

export interface ImageSpec {
  layers: LayerSpec[];
  architecture?: string;
  os?: string;
  variant?: string;
  config?: Record<string, unknown>;
}

/** Creates a temporary directory for one test's files. */
export function tempDir(prefix = "layerdisk-image-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeBlob(layout: string, data: Buffer): { digest: string; size: number } {
  const digest = sha256(data);
  mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
  writeFileSync(join(layout, "blobs", "sha256", digest.slice(7)), data);
  return { digest, size: data.length };
}

/** Writes an image's layers, config and manifest into `layout` and returns the manifest descriptor. */
export function writeImage(layout: string, spec: ImageSpec): { mediaType: string; digest: string; size: number; platform: Record<string, string> } {
  const layers = spec.layers.map((layer) => {
    const compression = layer.compression ?? "gzip";
    let blob = compress(layer.tar, compression);
    if (layer.corrupt !== undefined) blob = layer.corrupt(blob);
    const digest = sha256(blob);
    const size = blob.length;
    const stored = layer.tamper === undefined ? blob : layer.tamper(blob);
    mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
    writeFileSync(join(layout, "blobs", "sha256", digest.slice(7)), stored);
    return { mediaType: layer.mediaType ?? LAYER_TYPES[compression], digest, size, diffId: layer.diffId ?? sha256(layer.tar) };
  });

  const platform: Record<string, string> = { architecture: spec.architecture ?? "amd64", os: spec.os ?? "linux" };
  if (spec.variant !== undefined) platform.variant = spec.variant;
  const config = {
    ...platform,
    config: { Entrypoint: ["/bin/sh"], Cmd: ["-c", "true"], Env: ["PATH=/bin"], WorkingDir: "/", User: "0:0" },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    ...spec.config,
  };
  const configBlob = writeBlob(layout, Buffer.from(JSON.stringify(config)));
  const manifest = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...configBlob },
    layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
  };
  const manifestBlob = writeBlob(layout, Buffer.from(JSON.stringify(manifest)));
  return { mediaType: manifest.mediaType, ...manifestBlob, platform };
}

/** Writes `oci-layout` and an `index.json` listing `manifests`. */
export function writeIndex(layout: string, manifests: object[]): void {
  mkdirSync(layout, { recursive: true });
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(layout, "index.json"), JSON.stringify({ schemaVersion: 2, manifests }));
}

/** Builds a one-image OCI layout tagged `latest` and returns its directory. */
export function buildLayout(spec: ImageSpec, layout = join(tempDir(), "layout")): string {
  mkdirSync(layout, { recursive: true });
  const manifest = writeImage(layout, spec);
  writeIndex(layout, [{ mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size, annotations: { "org.opencontainers.image.ref.name": "latest" } }]);
  return layout;
}

/** Returns the error a promise rejects with, failing when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<ImageError> {
  try {
    await promise;
  } catch (error) {
    return error as ImageError;
  }
  throw new Error("expected the promise to reject");
}
