import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { RegistryError } from "../../src/errors.js";
import { toBlobCache } from "../../src/registry/blob-cache.js";
import { fetchBlob } from "../../src/registry/blob-download.js";
import { RegistryClient } from "../../src/registry/client.js";
import type { PullOptions } from "../../src/registry/pull.js";
import { pullImage } from "../../src/registry/pull.js";
import { cachedDigests, listFiles, unverifiedFiles } from "./helpers/cache.js";
import type { FakeImage } from "./helpers/fake-registry.js";
import { FakeRegistry } from "./helpers/fake-registry.js";

const registry = new FakeRegistry();
let image: FakeImage;
let root: string;
let cache: string;

/** Options that keep retries fast: 4 attempts, 20 ms base backoff, no Docker config. */
function options(extra: Partial<PullOptions> = {}): PullOptions {
  return {
    blobCache: cache,
    dockerConfig: false,
    retry: { attempts: 4, baseDelayMs: 20, maxDelayMs: 200 },
    timeouts: { connectMs: 2000, idleMs: 2000 },
    ...extra,
  };
}

async function pullAll(reference: string, extra: Partial<PullOptions> = {}): Promise<string[]> {
  const pulled = await pullImage(reference, options(extra));
  await pulled.done;
  return Promise.all(pulled.layers.map((layer) => layer.ready));
}

/** Runs `action` and returns the RegistryError it rejects with. */
async function registryError(action: () => Promise<unknown>): Promise<RegistryError> {
  try {
    await action();
  } catch (error) {
    expect(error).toBeInstanceOf(RegistryError);
    return error as RegistryError;
  }
  throw new Error("expected the pull to fail");
}

function ref(tagOrDigest = "v1"): string {
  const separator = tagOrDigest.startsWith("sha256:") ? "@" : ":";
  return `${registry.host}/${image.repository}${separator}${tagOrDigest}`;
}

beforeAll(async () => {
  await registry.start();
  image = registry.addImage("faults/app", "v1", [randomBytes(300_000), randomBytes(200_000), randomBytes(1000)]);
});
afterAll(async () => {
  await registry.stop();
});
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "layerdisk-registry-faults-"));
  cache = join(root, "cache");
  registry.hook = undefined;
  registry.requests.length = 0;
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe("pull from a fake registry", () => {
  it("caches every blob verified", async () => {
    const files = await pullAll(ref());

    expect(files).toEqual(image.layerDigests.map((digest) => join(cache, "blobs/sha256", digest.slice(7))));
    expect(await unverifiedFiles(cache)).toEqual([]);
    expect(cachedDigests(cache).sort()).toEqual([...image.layerDigests, image.configDigest, image.manifestDigest].sort());
  });

  it("skips blobs already cached", async () => {
    await pullAll(ref());
    registry.requests.length = 0;

    await pullAll(ref());

    for (const digest of image.layerDigests) expect(registry.blobRequests(digest)).toHaveLength(0);
  });

  it("shares one download between concurrent pulls", async () => {
    await Promise.all([pullAll(ref()), pullAll(ref()), pullAll(ref(image.manifestDigest))]);

    for (const digest of image.layerDigests) expect(registry.blobRequests(digest)).toHaveLength(1);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("limits parallel layer downloads", async () => {
    const many = registry.addImage("faults/many", "v1", Array.from({ length: 8 }, () => randomBytes(50_000)));
    let active = 0;
    let maxActive = 0;
    registry.hook = (request, response, path) => {
      if (!path.includes("/blobs/") || path.endsWith(many.configDigest)) return false;
      active += 1;
      maxActive = Math.max(maxActive, active);
      response.on("close", () => (active -= 1));
      setTimeout(() => {
        const digest = path.slice(path.lastIndexOf("/") + 1);
        const index = many.layerDigests.indexOf(digest);
        response.writeHead(200, { "content-length": many.layers[index]!.length }).end(many.layers[index]);
      }, 30);
      return true;
    };

    await pullAll(`${registry.host}/faults/many:v1`, { concurrency: 2 });

    expect(maxActive).toBe(2);
  });

  it("reports progress per layer", async () => {
    const events: Array<{ layerIndex: number; layerDone: boolean; layersDone: number; bytesDone: number }> = [];
    await pullAll(ref(), { onProgress: (event) => events.push(event) });

    const finished = events.filter((event) => event.layerDone);
    expect(finished.map((event) => event.layerIndex).sort()).toEqual([0, 1, 2]);
    expect(finished.at(-1)!.layersDone).toBe(3);
    for (const event of finished) expect(event.bytesDone).toBe(image.layers[event.layerIndex]!.length);
  });
});

describe("pull faults", () => {
  it("401 without challenge is unauthorized", async () => {
    registry.hook = (_request, response) => {
      response.writeHead(401).end();
      return true;
    };

    const error = await registryError(() => pullAll(ref()));

    expect(error.code).toBe("ERR_REGISTRY_UNAUTHORIZED");
    expect(error.message).toContain(ref());
    expect(listFiles(cache)).toEqual([]);
  });

  it("401 on a blob names the digest", async () => {
    const digest = image.layerDigests[1]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(401, { "www-authenticate": 'Basic realm="fake"' }).end();
      return true;
    };

    const error = await registryError(() => pullAll(ref()));

    expect(error.code).toBe("ERR_REGISTRY_UNAUTHORIZED");
    expect(error.digest).toBe(digest);
    expect(error.message).toContain(digest);
    expect(error.message).toContain(ref());
    expect(cachedDigests(cache)).not.toContain(digest);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("404 on the tag is not found", async () => {
    const error = await registryError(() => pullAll(ref("missing")));

    expect(error.code).toBe("ERR_REGISTRY_NOT_FOUND");
    expect(error.status).toBe(404);
    expect(error.message).toContain(ref("missing"));
    expect(error.message).toContain("MANIFEST_UNKNOWN");
    expect(listFiles(cache)).toEqual([]);
  });

  it("404 on a blob names the digest", async () => {
    const digest = image.layerDigests[0]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(404).end();
      return true;
    };

    const error = await registryError(() => pullAll(ref()));

    expect(error.code).toBe("ERR_REGISTRY_NOT_FOUND");
    expect(error.digest).toBe(digest);
    expect(error.message).toContain(digest);
    expect(cachedDigests(cache)).not.toContain(digest);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("429 with Retry-After seconds then succeeds", async () => {
    let rejections = 0;
    registry.hook = (_request, response, path) => {
      if (!path.includes("/manifests/") || rejections >= 1) return false;
      rejections += 1;
      response.writeHead(429, { "retry-after": "1" }).end();
      return true;
    };

    const started = Date.now();
    await pullAll(ref());

    expect(rejections).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("429 with Retry-After date then succeeds", async () => {
    let rejections = 0;
    const digest = image.layerDigests[0]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest) || rejections >= 2) return false;
      rejections += 1;
      response.writeHead(429, { "retry-after": new Date(Date.now() + 1000).toUTCString() }).end();
      return true;
    };

    await pullAll(ref());

    expect(rejections).toBe(2);
    expect(cachedDigests(cache)).toContain(digest);
  });

  it("persistent 429 is too many requests", async () => {
    const digest = image.layerDigests[2]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(429).end();
      return true;
    };

    const error = await registryError(() => pullAll(ref()));

    expect(error.code).toBe("ERR_REGISTRY_TOO_MANY_REQUESTS");
    expect(error.digest).toBe(digest);
    expect(registry.blobRequests(digest)).toHaveLength(4);
    expect(cachedDigests(cache)).not.toContain(digest);
  });

  it("429 beyond max Retry-After fails at once", async () => {
    registry.hook = (_request, response, path) => {
      if (!path.includes("/manifests/")) return false;
      response.writeHead(429, { "retry-after": "3600" }).end();
      return true;
    };

    const started = Date.now();
    const error = await registryError(() => pullAll(ref(), { retry: { attempts: 4, baseDelayMs: 20, maxRetryAfterMs: 10_000 } }));

    expect(error.code).toBe("ERR_REGISTRY_TOO_MANY_REQUESTS");
    expect(error.message).toContain("Retry-After of 3600 s");
    expect(registry.requests.filter((request) => request.path.includes("/manifests/"))).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it("500 twice then succeeds", async () => {
    let failures = 0;
    const digest = image.layerDigests[1]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest) || failures >= 2) return false;
      failures += 1;
      response.writeHead(500).end("boom");
      return true;
    };

    await pullAll(ref());

    expect(failures).toBe(2);
    expect(await unverifiedFiles(cache)).toEqual([]);
    expect(cachedDigests(cache)).toContain(digest);
  });

  it("persistent 500 is a server error", async () => {
    const digest = image.layerDigests[1]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(503).end();
      return true;
    };

    const error = await registryError(() => pullAll(ref()));

    expect(error.code).toBe("ERR_REGISTRY_SERVER");
    expect(error.status).toBe(503);
    expect(error.digest).toBe(digest);
    expect(error.message).toContain(digest);
    expect(error.message).toContain(ref());
    expect(registry.blobRequests(digest)).toHaveLength(4);
    expect(cachedDigests(cache)).not.toContain(digest);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("resumes with Range after a reset", async () => {
    const digest = image.layerDigests[0]!;
    const blob = image.layers[0]!;
    let resets = 0;
    registry.hook = (request, response, path) => {
      if (!path.endsWith(digest) || request.headers.range !== undefined || resets >= 1) return false;
      resets += 1;
      response.writeHead(200, { "content-length": blob.length });
      response.write(blob.subarray(0, 100_000), () => setTimeout(() => response.socket?.destroy(), 20));
      return true;
    };

    await pullAll(ref());

    const ranges = registry.blobRequests(digest).map((request) => request.headers.range);
    expect(ranges).toEqual([undefined, "bytes=100000-"]);
    expect(cachedDigests(cache)).toContain(digest);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("persistent reset fails", async () => {
    const digest = image.layerDigests[1]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(200, { "content-length": image.layers[1]!.length });
      response.flushHeaders();
      setTimeout(() => response.socket?.destroy(), 10);
      return true;
    };

    const error = await registryError(() => pullAll(ref()));

    expect(error.code).toBe("ERR_REGISTRY_NETWORK");
    expect(error.digest).toBe(digest);
    expect(error.message).toContain(digest);
    expect(registry.blobRequests(digest)).toHaveLength(5);
    expect(cachedDigests(cache)).not.toContain(digest);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("restarts when Range is ignored", async () => {
    const digest = image.layerDigests[0]!;
    const blob = image.layers[0]!;
    let resets = 0;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(200, { "content-length": blob.length });
      if (resets >= 1) {
        response.end(blob);
        return true;
      }
      resets += 1;
      response.write(blob.subarray(0, 50_000), () => setTimeout(() => response.socket?.destroy(), 20));
      return true;
    };

    await pullAll(ref());

    expect(registry.blobRequests(digest)).toHaveLength(2);
    expect(await unverifiedFiles(cache)).toEqual([]);
    expect(cachedDigests(cache)).toContain(digest);
  });

  it("hung server times out", async () => {
    registry.hook = (_request, _response, path) => path.includes("/manifests/");

    const started = Date.now();
    const error = await registryError(() =>
      pullAll(ref(), { timeouts: { connectMs: 1000, idleMs: 300 }, retry: { attempts: 2, baseDelayMs: 10 } }),
    );

    expect(error.code).toBe("ERR_REGISTRY_TIMEOUT");
    expect(error.message).toContain(ref());
    expect(error.message).toContain("timed out");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(listFiles(cache)).toEqual([]);
  });

  it("stall mid-blob times out and resumes", async () => {
    const digest = image.layerDigests[1]!;
    const blob = image.layers[1]!;
    let stalls = 0;
    registry.hook = (request, response, path) => {
      if (!path.endsWith(digest) || request.headers.range !== undefined || stalls >= 1) return false;
      stalls += 1;
      response.writeHead(200, { "content-length": blob.length });
      response.write(blob.subarray(0, 64_000));
      return true;
    };

    await pullAll(ref(), { timeouts: { connectMs: 1000, idleMs: 1000 } });

    const ranges = registry.blobRequests(digest).map((request) => request.headers.range);
    expect(ranges).toEqual([undefined, "bytes=64000-"]);
    expect(cachedDigests(cache)).toContain(digest);
  });

  it("blob with the wrong digest is never cached", async () => {
    const digest = image.layerDigests[1]!;
    const size = image.layers[1]!.length;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(200, { "content-length": size }).end(randomBytes(size));
      return true;
    };

    const error = await registryError(() => pullAll(ref()));

    expect(error.code).toBe("ERR_DIGEST_MISMATCH");
    expect(error.digest).toBe(digest);
    expect(error.message).toContain(digest);
    expect(error.message).toContain(ref());
    expect(cachedDigests(cache)).not.toContain(digest);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("blob longer than its size is rejected", async () => {
    const digest = image.layerDigests[2]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(200).end(Buffer.concat([image.layers[2]!, Buffer.from("extra")]));
      return true;
    };

    const error = await registryError(() => pullAll(ref()));

    expect(error.code).toBe("ERR_SIZE_MISMATCH");
    expect(error.digest).toBe(digest);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("manifest with the wrong digest is rejected", async () => {
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(`/manifests/${image.manifestDigest}`)) return false;
      const tampered = Buffer.from(image.manifestBytes.toString().replace('"schemaVersion":2', '"schemaVersion":2 '));
      response.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" }).end(tampered);
      return true;
    };

    const error = await registryError(() => pullAll(ref(image.manifestDigest)));

    expect(error.code).toBe("ERR_DIGEST_MISMATCH");
    expect(error.digest).toBe(image.manifestDigest);
    expect(error.message).toContain(image.manifestDigest);
    expect(listFiles(cache)).toEqual([]);
  });

  it("abort signal stops the pull", async () => {
    const controller = new AbortController();
    const digest = image.layerDigests[0]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(200, { "content-length": image.layers[0]!.length });
      response.write(image.layers[0]!.subarray(0, 1000), () => controller.abort());
      return true;
    };

    const error = await registryError(() => pullAll(ref(), { signal: controller.signal }));

    expect(error.code).toBe("ERR_REGISTRY_ABORTED");
    expect(cachedDigests(cache)).not.toContain(digest);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });
});

describe("shared downloads", () => {
  it("abort of one caller spares the other", async () => {
    const digest = image.layerDigests[0]!;
    const blob = image.layers[0]!;
    const aborter = new AbortController();
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(200, { "content-length": blob.length });
      response.write(blob.subarray(0, 1000), () => aborter.abort());
      setTimeout(() => response.end(blob.subarray(1000)), 300);
      return true;
    };
    const client = new RegistryClient(registry.host, { dockerConfig: false });
    const download = {
      client,
      repository: image.repository,
      reference: ref(),
      descriptor: { mediaType: "application/vnd.oci.image.layer.v1.tar", digest, size: blob.length },
      cache: toBlobCache(cache),
      maxResumes: 2,
    };

    // Both calls start together, so the second joins the first one's
    // download before its request reaches the server.
    const [aborted, completed] = await Promise.allSettled([fetchBlob({ ...download, signal: aborter.signal }), fetchBlob(download)]);
    client.close();

    expect(aborted.status).toBe("rejected");
    expect((aborted as PromiseRejectedResult).reason.code).toBe("ERR_REGISTRY_ABORTED");
    expect(completed.status).toBe("fulfilled");
    expect(registry.blobRequests(digest)).toHaveLength(1);
    expect(cachedDigests(cache)).toEqual([digest]);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("abort of every pull cancels the download", async () => {
    const digest = image.layerDigests[0]!;
    const blob = image.layers[0]!;
    const aborter = new AbortController();
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(200, { "content-length": blob.length });
      response.write(blob.subarray(0, 1000), () => aborter.abort());
      return true;
    };

    const results = await Promise.allSettled([
      pullAll(ref(), { signal: aborter.signal }),
      pullAll(ref(), { signal: aborter.signal }),
    ]);

    for (const result of results) {
      expect(result.status).toBe("rejected");
      expect((result as PromiseRejectedResult).reason.code).toBe("ERR_REGISTRY_ABORTED");
    }
    expect(cachedDigests(cache)).not.toContain(digest);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });
});

describe("redirects", () => {
  let storage: http.Server;
  let storageRequests: http.IncomingHttpHeaders[];

  beforeAll(async () => {
    storageRequests = [];
    storage = http.createServer((request, response) => {
      storageRequests.push(request.headers);
      const digest = request.url!.slice(1);
      const index = image.layerDigests.indexOf(digest);
      response.writeHead(200, { "content-length": image.layers[index]!.length }).end(image.layers[index]);
    });
    await new Promise<void>((resolve) => storage.listen(0, "127.0.0.1", resolve));
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => storage.close(() => resolve()));
  });

  it("drops Authorization on another host", async () => {
    const port = (storage.address() as AddressInfo).port;
    registry.hook = (request, response, path) => {
      if (request.headers.authorization !== "Basic dXNlcjpwYXNz") {
        response.writeHead(401, { "www-authenticate": 'Basic realm="fake"' }).end();
        return true;
      }
      const digest = path.slice(path.lastIndexOf("/") + 1);
      if (!image.layerDigests.includes(digest)) return false;
      response.writeHead(307, { location: `http://127.0.0.1:${port}/${digest}` }).end();
      return true;
    };

    await pullAll(ref(), { credentials: { username: "user", password: "pass" } });

    expect(storageRequests).toHaveLength(3);
    for (const headers of storageRequests) expect(headers.authorization).toBeUndefined();
    expect(await unverifiedFiles(cache)).toEqual([]);
    expect(cachedDigests(cache)).toHaveLength(5);
  });
});

describe("connect timeout", () => {
  it("full accept queue times out", async () => {
    // A listener with backlog 0 that never calls accept() completes one
    // handshake. Further SYNs are dropped, so the next connect hangs.
    const listener = spawn("python3", [
      "-c",
      "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)",
    ]);
    try {
      const port = await new Promise<number>((resolve) => listener.stdout.once("data", (chunk: Buffer) => resolve(Number(chunk.toString()))));
      const filler = net.connect(port, "127.0.0.1");
      await new Promise((resolve) => filler.once("connect", resolve));

      const reference = `127.0.0.1:${port}/faults/app:v1`;
      const error = await registryError(() =>
        pullAll(reference, { timeouts: { connectMs: 300, idleMs: 5000 }, retry: { attempts: 2, baseDelayMs: 10 } }),
      );
      filler.destroy();

      expect(error.code).toBe("ERR_REGISTRY_TIMEOUT");
      expect(error.message).toContain("took longer than 300 ms");
      expect(error.message).toContain(reference);
      expect(listFiles(cache)).toEqual([]);
    } finally {
      listener.kill("SIGKILL");
    }
  });
});

describe("manifest handling", () => {
  it("Docker-Content-Digest mismatch is rejected", async () => {
    registry.hook = (_request, response, path) => {
      if (!path.endsWith("/manifests/v1")) return false;
      response.writeHead(200, {
        "content-type": "application/vnd.oci.image.manifest.v1+json",
        "docker-content-digest": image.configDigest,
      });
      response.end(image.manifestBytes);
      return true;
    };

    const error = await registryError(() => pullAll(ref()));

    expect(error.code).toBe("ERR_DIGEST_MISMATCH");
    expect(error.message).toContain(image.manifestDigest);
    expect(listFiles(cache)).toEqual([]);
  });

  it("schema 1 is unsupported", async () => {
    registry.addManifest("faults/old", ["v1"], { schemaVersion: 1, name: "faults/old", fsLayers: [] }, "application/vnd.docker.distribution.manifest.v1+prettyjws");

    const error = await registryError(() => pullAll(`${registry.host}/faults/old:v1`));

    expect(error.code).toBe("ERR_MANIFEST_UNSUPPORTED");
    expect(error.message).toContain("schemaVersion 1");
  });

  it("diff_ids count must match layers", async () => {
    const config = Buffer.from(JSON.stringify({ rootfs: { type: "layers", diff_ids: [] } }));
    const configDigest = registry.addBlob(config);
    const layer = image.layers[2]!;
    registry.addManifest(
      "faults/app",
      ["bad-config"],
      {
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest: image.layerDigests[2], size: layer.length }],
      },
      "application/vnd.oci.image.manifest.v1+json",
    );

    const error = await registryError(() => pullAll(ref("bad-config")));

    expect(error.code).toBe("ERR_MANIFEST_INVALID");
    expect(error.message).toContain("1 layers, but its config lists 0 diff_ids");
  });

  it("nested index selects the platform", async () => {
    const arm = registry.addImage("faults/nested", "arm", [randomBytes(100)], { os: "linux", architecture: "arm64" });
    const amd = registry.addImage("faults/nested", "amd", [randomBytes(100)], { os: "linux", architecture: "amd64" });
    const entry = (fake: FakeImage, architecture: string) => ({
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: fake.manifestDigest,
      size: fake.manifestBytes.length,
      platform: { os: "linux", architecture },
    });
    const inner = registry.addManifest(
      "faults/nested",
      [],
      { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [entry(amd, "amd64"), entry(arm, "arm64")] },
      "application/vnd.oci.image.index.v1+json",
    );
    const outer = registry.addManifest(
      "faults/nested",
      ["multi"],
      {
        schemaVersion: 2,
        mediaType: "application/vnd.docker.distribution.manifest.list.v2+json",
        manifests: [
          {
            mediaType: "application/vnd.oci.image.index.v1+json",
            digest: inner.digest,
            size: inner.bytes.length,
            platform: { os: "linux", architecture: "arm64" },
          },
        ],
      },
      "application/vnd.docker.distribution.manifest.list.v2+json",
    );

    const pulled = await pullImage(`${registry.host}/faults/nested:multi`, options({ platform: "linux/arm64" }));
    await pulled.done;

    expect(pulled.indexDigest).toBe(outer.digest);
    expect(pulled.manifestDigest).toBe(arm.manifestDigest);
    expect(pulled.config.architecture).toBe("arm64");
  });
});

describe("index entries", () => {
  it("manifest size must match the entry", async () => {
    const index = registry.addManifest(
      image.repository,
      ["wrong-size"],
      {
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [
          {
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            digest: image.manifestDigest,
            size: image.manifestBytes.length + 1,
            platform: { os: "linux", architecture: "amd64" },
          },
        ],
      },
      "application/vnd.oci.image.index.v1+json",
    );

    const error = await registryError(() => pullAll(ref("wrong-size"), { platform: "linux/amd64" }));

    expect(error.code).toBe("ERR_SIZE_MISMATCH");
    expect(error.digest).toBe(image.manifestDigest);
    expect(error.message).toContain("index entry gives");
    expect(cachedDigests(cache)).toEqual([index.digest]);
  });
});
