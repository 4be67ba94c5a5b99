/**
 * Pulls from a real CNCF distribution registry (`docker-registry`) on
 * 127.0.0.1, filled with skopeo from the OCI test images: anonymous, with
 * token authentication, and with htpasswd basic authentication.
 */

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { createGunzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { RegistryError } from "../../src/errors.js";
import type { PullOptions, PulledImage } from "../../src/registry/pull.js";
import { pullImage } from "../../src/registry/pull.js";
import { Store } from "../../src/store/store.js";
import { sha256File, unverifiedFiles } from "./helpers/cache.js";
import type { RunningRegistry } from "./helpers/registry-server.js";
import { skopeoCopy, startRegistry } from "./helpers/registry-server.js";
import type { TokenServer } from "./helpers/token-server.js";
import { startTokenServer } from "./helpers/token-server.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const testdata = process.env.LAYERDISK_TESTDATA ?? "/var/cache/layerdisk-testdata";
const sharedTestdata =
  process.env.LAYERDISK_SHARED_TESTDATA ??
  [join(repoRoot, "../shared/testdata"), join(repoRoot, "../../shared/testdata")].find((path) => existsSync(path))!;

const MANIFEST_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
];

interface OciLayoutImage {
  manifestDigest: string;
  manifest: { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
}

function readOciLayout(folder: string): OciLayoutImage {
  const index = JSON.parse(readFileSync(join(folder, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
  const manifestDigest = index.manifests[0]!.digest;
  const manifest = JSON.parse(readFileSync(join(folder, "blobs/sha256", manifestDigest.slice(7)), "utf8")) as OciLayoutImage["manifest"];
  return { manifestDigest, manifest };
}

/** Fetches a manifest's digest and size from the registry, without the client under test. */
function headManifest(host: string, repository: string, tag: string): Promise<{ digest: string; size: number; mediaType: string }> {
  return new Promise((resolvePromise, reject) => {
    const request = http.get(
      { host: "127.0.0.1", port: Number(host.split(":")[1]), path: `/v2/${repository}/manifests/${tag}`, headers: { accept: MANIFEST_TYPES.join(", ") } },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => {
          const body = Buffer.concat(chunks);
          resolvePromise({
            digest: `sha256:${createHash("sha256").update(body).digest("hex")}`,
            size: body.length,
            mediaType: String(response.headers["content-type"]),
          });
        });
      },
    );
    request.on("error", reject);
  });
}

function putManifest(host: string, repository: string, tag: string, mediaType: string, body: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const request = http.request(
      { host: "127.0.0.1", port: Number(host.split(":")[1]), method: "PUT", path: `/v2/${repository}/manifests/${tag}`, headers: { "content-type": mediaType } },
      (response) => {
        response.resume();
        response.on("end", () => resolvePromise(response.statusCode ?? 0));
      },
    );
    request.on("error", reject);
    request.end(body);
  });
}

async function gunzipDigest(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), createGunzip(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) hash.update(chunk);
  });
  return `sha256:${hash.digest("hex")}`;
}

async function pullAll(reference: string, options: PullOptions): Promise<PulledImage> {
  const image = await pullImage(reference, options);
  await image.done;
  return image;
}

let root: string;
let storage: string;
let open: RunningRegistry;
const started: Array<{ stop: () => Promise<void> }> = [];

beforeAll(async () => {
  for (const path of ["/usr/bin/docker-registry", join(testdata, "debian-python/index.json"), join(sharedTestdata ?? "", "fixtures")]) {
    if (!existsSync(path)) throw new Error(`registry tests need ${path}; run scripts/install-system-deps.sh and scripts/testdata.sh`);
  }
  root = mkdtempSync(join(tmpdir(), "layerdisk-registry-"));
  storage = join(root, "storage");
  mkdirSync(storage);
  open = await startRegistry(root, storage, { kind: "none" }, "open");
  started.push(open);

  const fixtures = join(sharedTestdata, "fixtures");
  await skopeoCopy(`oci:${join(testdata, "debian-python")}:latest`, `docker://${open.host}/debian-python:latest`);
  await skopeoCopy(`oci:${join(testdata, "edge")}:latest`, `docker://${open.host}/edge:latest`);
  await skopeoCopy(`docker-archive:${join(fixtures, "busybox-1.31.1.docker.tar")}`, `docker://${open.host}/busybox:1.31.1`);
  await skopeoCopy(`docker-archive:${join(fixtures, "busybox-1.31.1.docker.tar")}`, `docker://${open.host}/multi:amd64`);
  await skopeoCopy(`oci-archive:${join(fixtures, "buildkit-zstd.oci.tar")}`, `docker://${open.host}/multi:arm64`);

  // A two-platform index over the images just pushed, written through the API.
  const amd64 = await headManifest(open.host, "multi", "amd64");
  const arm64 = await headManifest(open.host, "multi", "arm64");
  const index = {
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.index.v1+json",
    manifests: [
      { mediaType: amd64.mediaType, digest: amd64.digest, size: amd64.size, platform: { os: "linux", architecture: "amd64" } },
      { mediaType: arm64.mediaType, digest: arm64.digest, size: arm64.size, platform: { os: "linux", architecture: "arm64" } },
    ],
  };
  const status = await putManifest(open.host, "multi", "latest", index.mediaType, JSON.stringify(index));
  if (status !== 201) throw new Error(`PUT of the index returned ${status}: ${open.output()}`);
}, 180_000);

afterAll(async () => {
  for (const server of started.reverse()) await server.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

function newCache(name: string): string {
  return join(root, "caches", name);
}

describe("anonymous registry", () => {
  it("pulls debian-python verified", async () => {
    const cache = newCache("debian-python");
    const layout = readOciLayout(join(testdata, "debian-python"));

    const image = await pullAll(`${open.host}/debian-python:latest`, { blobCache: cache, dockerConfig: false });

    expect(image.manifestDigest).toBe(layout.manifestDigest);
    expect(image.configDescriptor.digest).toBe(layout.manifest.config.digest);
    expect(image.layers.map((layer) => layer.descriptor.digest)).toEqual(layout.manifest.layers.map((layer) => layer.digest));
    for (const layer of image.layers) {
      expect(await layer.ready).toBe(layer.file);
      expect(await sha256File(layer.file)).toBe(layer.descriptor.digest);
      expect(readFileSync(layer.file).length).toBe(layer.descriptor.size);
    }
    const diffIds = await Promise.all(image.layers.map((layer) => gunzipDigest(layer.file)));
    expect(diffIds).toEqual(image.config.rootfs?.diff_ids);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("pulls edge into a Store", async () => {
    const store = await new Store(newCache("edge-store")).open();
    const layout = readOciLayout(join(testdata, "edge"));

    const image = await pullAll(`${open.host}/edge`, { blobCache: store, dockerConfig: false, platform: "linux/amd64" });

    expect(image.layers).toHaveLength(6);
    expect(image.manifestDigest).toBe(layout.manifestDigest);
    for (const layer of image.layers) {
      expect(layer.file).toBe(store.blobFile(layer.descriptor.digest));
      expect(await sha256File(layer.file)).toBe(layer.descriptor.digest);
    }
  });

  it("pulls a Docker schema 2 image", async () => {
    const cache = newCache("busybox");

    const image = await pullAll(`${open.host}/busybox:1.31.1`, { blobCache: cache, dockerConfig: false });

    expect(image.manifestMediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(image.layers).toHaveLength(1);
    expect(await gunzipDigest(image.layers[0]!.file)).toBe(image.config.rootfs?.diff_ids?.[0]);
  });

  it("pulls by tag and digest", async () => {
    const cache = newCache("by-digest");
    const { manifestDigest } = readOciLayout(join(testdata, "edge"));

    const image = await pullAll(`${open.host}/edge:ignored-tag@${manifestDigest}`, { blobCache: cache, dockerConfig: false });

    expect(image.manifestDigest).toBe(manifestDigest);
    expect(image.reference.tag).toBe("ignored-tag");
  });

  it("second pull downloads nothing", async () => {
    const cache = newCache("twice");
    await pullAll(`${open.host}/edge:latest`, { blobCache: cache, dockerConfig: false });
    const events: Array<{ layerDone: boolean; cached: boolean }> = [];

    await pullAll(`${open.host}/edge:latest`, { blobCache: cache, dockerConfig: false, onProgress: (event) => events.push(event) });

    expect(events.filter((event) => event.layerDone)).toHaveLength(6);
    expect(events.every((event) => event.cached)).toBe(true);
  });

  it("first layer is ready before the last", async () => {
    const cache = newCache("streaming");
    const order: number[] = [];

    const image = await pullImage(`${open.host}/debian-python:latest`, { blobCache: cache, dockerConfig: false, concurrency: 1 });
    await Promise.all(image.layers.map((layer) => layer.ready.then(() => order.push(layer.index))));
    await image.done;

    expect(order).toEqual([0, 1, 2]);
  });

  it("missing tag is not found", async () => {
    const error = await pullImage(`${open.host}/edge:nope`, { blobCache: newCache("missing"), dockerConfig: false }).catch((caught) => caught);

    expect(error).toBeInstanceOf(RegistryError);
    expect(error.code).toBe("ERR_REGISTRY_NOT_FOUND");
    expect(error.message).toContain(`${open.host}/edge:nope`);
  });
});

describe("multi-platform index", () => {
  it("selects linux/arm64", async () => {
    const image = await pullAll(`${open.host}/multi:latest`, { blobCache: newCache("multi"), dockerConfig: false, platform: "linux/arm64" });

    expect(image.indexDigest).toMatch(/^sha256:/);
    expect(image.platform).toEqual({ os: "linux", architecture: "arm64" });
    expect(image.config.architecture).toBe("arm64");
    expect(image.layers[0]!.descriptor.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+zstd");
  });

  it("selects linux/amd64", async () => {
    const image = await pullAll(`${open.host}/multi:latest`, { blobCache: newCache("multi"), dockerConfig: false, platform: { os: "linux", architecture: "amd64" } });

    expect(image.config.architecture).toBe("amd64");
    expect(image.manifestMediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
  });

  it("missing platform lists the available ones", async () => {
    const error = await pullImage(`${open.host}/multi:latest`, { blobCache: newCache("multi-missing"), dockerConfig: false, platform: "linux/arm/v7" }).catch(
      (caught) => caught,
    );

    expect(error.code).toBe("ERR_PLATFORM_NOT_FOUND");
    expect(error.message).toContain("linux/arm/v7");
    expect(error.message).toContain("available: linux/amd64, linux/arm64");
    expect(error.message).toContain(`${open.host}/multi:latest`);
  });
});

describe("token authentication", () => {
  let tokens: TokenServer;
  let secured: RunningRegistry;

  beforeAll(async () => {
    const folder = join(root, "token");
    mkdirSync(folder);
    tokens = await startTokenServer({ folder, service: "layerdisk-test", issuer: "layerdisk-test-issuer", username: "alice", password: "wonderland" });
    started.push(tokens);
    secured = await startRegistry(
      root,
      storage,
      { kind: "token", realm: tokens.realm, service: "layerdisk-test", issuer: "layerdisk-test-issuer", rootCertBundle: tokens.certFile },
      "token",
    );
    started.push(secured);
  });

  it("pulls with a cached token", async () => {
    tokens.requests.length = 0;

    const image = await pullAll(`${secured.host}/edge:latest`, {
      blobCache: newCache("token"),
      dockerConfig: false,
      credentials: { username: "alice", password: "wonderland" },
    });

    expect(image.layers).toHaveLength(6);
    expect(tokens.requests).toEqual([{ scope: "repository:edge:pull", service: "layerdisk-test", authorized: true }]);
  });

  it("reads credentials from a Docker config", async () => {
    const configFile = join(root, "token", "config.json");
    const auth = Buffer.from("alice:wonderland").toString("base64");
    writeFileSync(configFile, JSON.stringify({ auths: { [`http://${secured.host}`]: { auth } } }));

    const image = await pullAll(`${secured.host}/busybox:1.31.1`, { blobCache: newCache("token-config"), dockerConfig: configFile });

    expect(image.layers).toHaveLength(1);
  });

  it("wrong password is unauthorized", async () => {
    const cache = newCache("token-denied");

    const error = await pullImage(`${secured.host}/edge:latest`, {
      blobCache: cache,
      dockerConfig: false,
      credentials: { username: "alice", password: "wrong" },
    }).catch((caught) => caught);

    expect(error.code).toBe("ERR_REGISTRY_UNAUTHORIZED");
    expect(error.message).toContain(`${secured.host}/edge:latest`);
    expect(existsSync(cache)).toBe(false);
  });
});

describe("htpasswd basic authentication", () => {
  let secured: RunningRegistry;

  beforeAll(async () => {
    const path = join(root, "htpasswd");
    writeFileSync(path, execFileSync("htpasswd", ["-nbB", "bob", "builder"]));
    secured = await startRegistry(root, storage, { kind: "htpasswd", realm: "layerdisk-test", path }, "htpasswd");
    started.push(secured);
  });

  it("pulls with basic credentials", async () => {
    const image = await pullAll(`${secured.host}/busybox:1.31.1`, {
      blobCache: newCache("basic"),
      dockerConfig: false,
      credentials: { username: "bob", password: "builder" },
    });

    expect(image.layers).toHaveLength(1);
    expect(await sha256File(image.layers[0]!.file)).toBe(image.layers[0]!.descriptor.digest);
  });

  it("no credentials is unauthorized", async () => {
    const cache = newCache("basic-denied");

    const error = await pullImage(`${secured.host}/busybox:1.31.1`, { blobCache: cache, dockerConfig: false }).catch((caught) => caught);

    expect(error.code).toBe("ERR_REGISTRY_UNAUTHORIZED");
    expect(error.status).toBe(401);
    expect(existsSync(cache)).toBe(false);
  });
});
