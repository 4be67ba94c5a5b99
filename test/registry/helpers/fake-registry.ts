/**
 * An in-memory registry on 127.0.0.1 that serves the distribution API's
 * pull endpoints, with a hook per test to inject faults.
 */

import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

/** Returns true when it has handled the request itself. */
export type FaultHook = (request: http.IncomingMessage, response: http.ServerResponse, path: string) => boolean;

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export interface FakeImage {
  repository: string;
  tag: string;
  manifestDigest: string;
  manifestBytes: Buffer;
  configDigest: string;
  layerDigests: string[];
  layers: Buffer[];
}

export class FakeRegistry {
  readonly requests: RecordedRequest[] = [];
  hook: FaultHook | undefined;
  private readonly blobs = new Map<string, Buffer>();
  private readonly manifests = new Map<string, { bytes: Buffer; mediaType: string }>();
  private readonly server = http.createServer((request, response) => this.handle(request, response));
  private readonly sockets = new Set<import("node:net").Socket>();
  port = 0;

  async start(): Promise<this> {
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  addBlob(bytes: Buffer): string {
    const digest = sha256(bytes);
    this.blobs.set(digest, bytes);
    return digest;
  }

  addManifest(repository: string, references: string[], document: object, mediaType: string): { digest: string; bytes: Buffer } {
    const bytes = Buffer.from(JSON.stringify(document));
    const digest = sha256(bytes);
    for (const reference of [...references, digest]) this.manifests.set(`${repository}:${reference}`, { bytes, mediaType });
    return { digest, bytes };
  }

  /** Adds an OCI image with one gzip-free layer per buffer. */
  addImage(repository: string, tag: string, layers: Buffer[], platform = { os: "linux", architecture: "amd64" }): FakeImage {
    const layerDigests = layers.map((layer) => this.addBlob(layer));
    const config = Buffer.from(JSON.stringify({ ...platform, rootfs: { type: "layers", diff_ids: layerDigests } }));
    const configDigest = this.addBlob(config);
    const manifest = {
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
      layers: layers.map((layer, i) => ({
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: layerDigests[i],
        size: layer.length,
      })),
    };
    const { digest, bytes } = this.addManifest(repository, [tag], manifest, manifest.mediaType);
    return { repository, tag, manifestDigest: digest, manifestBytes: bytes, configDigest, layerDigests, layers };
  }

  blobRequests(digest: string): RecordedRequest[] {
    return this.requests.filter((request) => request.path.endsWith(`/blobs/${digest}`));
  }

  private handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const path = new URL(request.url ?? "/", "http://x").pathname;
    this.requests.push({ method: request.method ?? "GET", path, headers: request.headers });
    if (this.hook?.(request, response, path)) return;
    serveDistribution(request, response, path, this.blobs, this.manifests);
  }
}

function sendError(response: http.ServerResponse, status: number, code: string, message: string): void {
  response.writeHead(status, { "content-type": "application/json" });
  response.end(JSON.stringify({ errors: [{ code, message }] }));
}

function serveDistribution(
  request: http.IncomingMessage,
  response: http.ServerResponse,
  path: string,
  blobs: Map<string, Buffer>,
  manifests: Map<string, { bytes: Buffer; mediaType: string }>,
): void {
  if (path === "/v2/") {
    response.writeHead(200).end("{}");
    return;
  }

  const manifestMatch = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
  if (manifestMatch) {
    const manifest = manifests.get(`${manifestMatch[1]}:${manifestMatch[2]}`);
    if (!manifest) return sendError(response, 404, "MANIFEST_UNKNOWN", "manifest unknown");
    response.writeHead(200, {
      "content-type": manifest.mediaType,
      "content-length": manifest.bytes.length,
      "docker-content-digest": sha256(manifest.bytes),
    });
    response.end(request.method === "HEAD" ? undefined : manifest.bytes);
    return;
  }

  const blobMatch = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
  const blob = blobMatch ? blobs.get(blobMatch[2]!) : undefined;
  if (!blob) return sendError(response, 404, "BLOB_UNKNOWN", "blob unknown to registry");

  const range = /^bytes=(\d+)-$/.exec(request.headers.range ?? "");
  if (range) {
    const start = Number(range[1]);
    response.writeHead(206, {
      "content-length": blob.length - start,
      "content-range": `bytes ${start}-${blob.length - 1}/${blob.length}`,
      "content-type": "application/octet-stream",
    });
    response.end(blob.subarray(start));
    return;
  }
  response.writeHead(200, { "content-length": blob.length, "content-type": "application/octet-stream" });
  response.end(blob);
}
