// createChain and `layerdisk pull` against registries on 127.0.0.1: a real
// docker-registry filled with skopeo (anonymous, token auth, htpasswd basic
// auth) and the in-memory fault registry of the registry client's tests.

import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { createChain } from "../../src/chain/create.js";
import { classifyReference } from "../../src/chain/source.js";
import type { ChainProgress } from "../../src/chain/types.js";
import { LayerdiskError } from "../../src/errors.js";
import { prune } from "../../src/store/prune.js";
import { Store } from "../../src/store/store.js";
import { makeTar } from "../image/builder.js";
import { fixtureReference, fixturesDir, testdataDir } from "../image/testdata.js";
import { listFiles, unverifiedFiles } from "../registry/helpers/cache.js";
import { FakeRegistry } from "../registry/helpers/fake-registry.js";
import { REGISTRY_BINARY, skopeoCopy, startRegistry, type RunningRegistry } from "../registry/helpers/registry-server.js";
import { startTokenServer } from "../registry/helpers/token-server.js";
import { listChain, listDirectory, listingDifferences } from "./oracles.js";

const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const FS_SIZE = 2 * 1024 ** 3;

const scratch = mkdtempSync(join(tmpdir(), "layerdisk-registry-chain-"));
const started: Array<{ stop: () => Promise<void> }> = [];
let open: RunningRegistry;
let storage: string;

afterAll(async () => {
  for (const server of started.reverse()) await server.stop();
  rmSync(scratch, { recursive: true, force: true });
});

let storeCount = 0;
function newStore(): string {
  storeCount += 1;
  return join(scratch, `store-${storeCount}`);
}

function expectTree(disk: string, expected: string, options: { mtime?: boolean } = {}): void {
  const actual = listChain(disk, options);
  expect(listingDifferences(expected, actual)).toEqual([]);
  expect(actual).toBe(expected);
}

/**
 * Returns what a failed createChain must not leave in a store: temporary
 * files in its layer and blob folders, layer files without their record,
 * and blob files that do not hash to their name.
 */
async function leftovers(store: string): Promise<string[]> {
  const layerFiles = listFiles(join(store, "layers"));
  const temporary = layerFiles.filter((file) => file.includes(".tmp-")).map((file) => `layers/${file}`);
  const unrecorded = layerFiles
    .filter((file) => file.endsWith(".qcow2") && !layerFiles.includes(file.replace(/\.qcow2$/, ".json")))
    .map((file) => `layers/${file}`);
  const blobs = (await unverifiedFiles(store)).filter((file) => file.startsWith("blobs/"));
  return [...temporary, ...unrecorded, ...blobs];
}

describe("reference classification", () => {
  it("classifies prefixes, paths and registry names", () => {
    expect(classifyReference("alpine")).toEqual({ kind: "registry", reference: "alpine" });
    expect(classifyReference("localhost:5000/repo:tag")).toEqual({ kind: "registry", reference: "localhost:5000/repo:tag" });
    expect(classifyReference("docker://debian:bookworm")).toEqual({ kind: "registry", reference: "debian:bookworm" });
    expect(classifyReference("oci-layout:alpine")).toEqual({ kind: "local", reference: "oci-layout:alpine" });
    expect(classifyReference("./alpine")).toEqual({ kind: "local", reference: "./alpine" });
    expect(classifyReference(`${testdataDir}/edge:latest`).kind).toBe("local");
    expect(classifyReference("Not A Reference").kind).toBe("local");
  });

  it("prefers an existing path", () => {
    const cwd = process.cwd();
    process.chdir(scratch);
    try {
      mkdirSync("alpine", { recursive: true });
      expect(classifyReference("alpine").kind).toBe("local");
      expect(classifyReference("alpine:3.20").kind).toBe("local");
    } finally {
      process.chdir(cwd);
    }
  });
});

describe.skipIf(!existsSync(REGISTRY_BINARY))("docker-registry", () => {
  beforeAll(async () => {
    storage = join(scratch, "storage");
    mkdirSync(storage);
    open = await startRegistry(scratch, storage, { kind: "none" }, "open");
    started.push(open);
    await skopeoCopy(`oci:${join(testdataDir, "debian-python")}:latest`, `docker://${open.host}/debian-python:latest`);
    await skopeoCopy(`oci:${join(testdataDir, "edge")}:latest`, `docker://${open.host}/edge:latest`);
    await skopeoCopy(`docker-archive:${join(fixturesDir, "busybox-1.31.1.docker.tar")}`, `docker://${open.host}/busybox:1.31.1`);
    await skopeoCopy(`docker-archive:${join(fixturesDir, "busybox-1.31.1.docker.tar")}`, `docker://${open.host}/multi:amd64`);
    await skopeoCopy(`oci-archive:${join(fixturesDir, "buildkit-zstd.oci.tar")}`, `docker://${open.host}/multi:arm64`);
    // A two-platform index over both tags, written through the registry API.
    await pushIndex(open.host, "multi", ["amd64", "arm64"]);
  }, 180_000);

  it("converts debian-python anonymously", async () => {
    const store = newStore();
    const events: ChainProgress[] = [];

    const result = await createChain(`${open.host}/debian-python:latest`, {
      store,
      fsSize: FS_SIZE,
      dockerConfig: false,
      onProgress: (event) => events.push(event),
    });

    expectTree(result.disk, listDirectory(join(testdataDir, "debian-python.rootfs")));
    const downloads = events.filter((event) => event.type === "download");
    expect(downloads.filter((event) => event.layerDone)).toHaveLength(3);
    const last = downloads.at(-1)!;
    expect(last.totalBytesDone).toBe(last.totalBytes);
    expect(last.bytesPerSecond).toBeGreaterThan(0);
    expect(events.filter((event) => event.type === "layer" && event.state === "done")).toHaveLength(3);
    expect(await leftovers(store)).toEqual([]);

    // The same reference again downloads and converts nothing.
    const again: ChainProgress[] = [];
    const second = await createChain(`docker://${open.host}/debian-python:latest`, {
      store,
      fsSize: FS_SIZE,
      dockerConfig: false,
      onProgress: (event) => again.push(event),
    });
    expect(second.chain).toEqual(result.chain);
    expect(again.filter((event) => event.type === "download").every((event) => event.cached)).toBe(true);
    expect(again.filter((event) => event.type === "layer").every((event) => event.state === "cached")).toBe(true);
  }, 120_000);

  it("selects linux/arm64 from an index", async () => {
    const expected = fixtureReference("buildkit-zstd.oci.tar", "oci-archive", ["--override-arch", "arm64"]);

    const result = await createChain(`${open.host}/multi:latest`, { store: newStore(), fsSize: FS_SIZE, dockerConfig: false, platform: "linux/arm64" });

    expect(result.platform).toBe("linux/arm64");
    expectTree(result.disk, expected);
  }, 60_000);

  it("selects linux/amd64 from an index", async () => {
    const expected = fixtureReference("busybox-1.31.1.docker.tar", "docker-archive");

    const result = await createChain(`${open.host}/multi:latest`, { store: newStore(), fsSize: FS_SIZE, dockerConfig: false, platform: "linux/amd64" });

    expect(result.platform).toBe("linux/amd64");
    expectTree(result.disk, expected);
  }, 60_000);

  it("converts a zstd image with token auth", async () => {
    const folder = join(scratch, "token");
    mkdirSync(folder);
    const tokens = await startTokenServer({ folder, service: "layerdisk-test", issuer: "layerdisk-test-issuer", username: "alice", password: "wonderland" });
    started.push(tokens);
    const secured = await startRegistry(
      scratch,
      storage,
      { kind: "token", realm: tokens.realm, service: "layerdisk-test", issuer: "layerdisk-test-issuer", rootCertBundle: tokens.certFile },
      "token",
    );
    started.push(secured);

    // edge's listing alone takes over 30 s, so the small zstd image is used instead.
    const result = await createChain(`${secured.host}/multi:arm64`, {
      store: newStore(),
      fsSize: FS_SIZE,
      dockerConfig: false,
      platform: "linux/arm64",
      credentials: { username: "alice", password: "wonderland" },
    });

    expect(tokens.requests.length).toBeGreaterThan(0);
    expect(tokens.requests.every((request) => request.authorized)).toBe(true);
    expectTree(result.disk, fixtureReference("buildkit-zstd.oci.tar", "oci-archive", ["--override-arch", "arm64"]));
  }, 60_000);

  it("converts busybox with htpasswd auth", async () => {
    const path = join(scratch, "htpasswd");
    writeFileSync(path, execFileSync("htpasswd", ["-nbB", "bob", "builder"]));
    const secured = await startRegistry(scratch, storage, { kind: "htpasswd", realm: "layerdisk-test", path }, "htpasswd");
    started.push(secured);

    const result = await createChain(`${secured.host}/busybox:1.31.1`, {
      store: newStore(),
      fsSize: FS_SIZE,
      dockerConfig: false,
      credentials: { username: "bob", password: "builder" },
    });

    expectTree(result.disk, fixtureReference("busybox-1.31.1.docker.tar", "docker-archive"));
  }, 60_000);

  it("layerdisk pull keeps blobs through prune", async () => {
    const store = newStore();
    const cli = join(repoRoot, "src", "cli", "main.ts");

    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      ["--import", "tsx", cli, "pull", "--store", store, "--json", `${open.host}/edge:latest`, "--platform", "linux/amd64"],
      { cwd: repoRoot, env: { ...process.env, DOCKER_CONFIG: join(scratch, "no-docker-config") } },
    );

    const record = JSON.parse(stdout) as { manifestDigest: string; layerDigests: string[] };
    expect(record.layerDigests).toHaveLength(6);
    expect(stderr).toMatch(/MiB\/s, 6\/6 layers/);
    expect(listFiles(join(store, "layers"))).toEqual([]);
    const removed = await prune(await new Store(store).open());
    expect(removed.removedBlobs).toEqual([]);
    for (const digest of record.layerDigests) expect(existsSync(join(store, "blobs", "sha256", digest.slice(7)))).toBe(true);

    // createChain then finds every blob cached.
    const events: ChainProgress[] = [];
    await createChain(`${open.host}/edge:latest`, { store, fsSize: FS_SIZE, dockerConfig: false, platform: "linux/amd64", onProgress: (event) => events.push(event) });
    expect(events.filter((event) => event.type === "download").every((event) => event.cached)).toBe(true);

    // Removing the pull and the image records lets prune free the blobs.
    await execFileAsync(process.execPath, ["--import", "tsx", cli, "rm", "--store", store, `${open.host}/edge:latest`], { cwd: repoRoot });
    const storeHandle = await new Store(store).open();
    expect(await storeHandle.listPulls()).toEqual([]);
    for (const overlay of await storeHandle.listOverlays()) rmSync(overlay.disk);
    const freed = await prune(storeHandle);
    expect(freed.removedBlobs).toEqual(expect.arrayContaining(record.layerDigests));
  }, 60_000);

  it("missing tag fails with the reference", async () => {
    const store = newStore();
    const error = await createChain(`${open.host}/edge:nope`, { store, dockerConfig: false }).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(LayerdiskError);
    expect((error as LayerdiskError).code).toBe("ERR_REGISTRY_NOT_FOUND");
    expect((error as LayerdiskError).message).toContain(`${open.host}/edge:nope`);
    expect(await leftovers(store)).toEqual([]);
  });
});

/** Writes an OCI index over tags of one repository, each with its config's platform. */
async function pushIndex(host: string, repository: string, architectures: string[]): Promise<void> {
  const manifests = [];
  for (const architecture of architectures) {
    const raw = execFileSync("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${host}/${repository}:${architecture}`]);
    const { createHash } = await import("node:crypto");
    const mediaType = (JSON.parse(raw.toString()) as { mediaType: string }).mediaType;
    manifests.push({
      mediaType,
      digest: `sha256:${createHash("sha256").update(raw).digest("hex")}`,
      size: raw.length,
      platform: { os: "linux", architecture },
    });
  }
  const index = { schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests };
  const response = await fetch(`http://${host}/v2/${repository}/manifests/latest`, {
    method: "PUT",
    headers: { "content-type": index.mediaType },
    body: JSON.stringify(index),
  });
  if (response.status !== 201) throw new Error(`PUT of the index returned ${response.status}`);
}

describe("faults through createChain", () => {
  const registry = new FakeRegistry();
  let layers: Buffer[];
  let digests: string[];

  beforeAll(async () => {
    await registry.start();
    layers = [
      await makeTar([{ name: "etc/", type: "directory" }, { name: "etc/base", content: "base\n" }]),
      await makeTar([{ name: "etc/", type: "directory" }, { name: "etc/app", content: "x".repeat(200_000) }]),
      await makeTar([{ name: "etc/.wh.base" }]),
    ];
    digests = registry.addImage("faults/app", "v1", layers).layerDigests;
  });
  afterAll(async () => {
    registry.hook = undefined;
    await registry.stop();
  });

  it("converts the fault-free image", async () => {
    registry.hook = undefined;
    const result = await createChain(`${registry.host}/faults/app:v1`, { store: newStore(), fsSize: FS_SIZE, dockerConfig: false, platform: "linux/amd64" });
    expect(result.chain).toHaveLength(3);
    expect(listChain(result.disk)).toContain("etc/app");
  }, 60_000);

  it("converts layer 1 while layer 3 downloads", async () => {
    // The last blob is held back until the first layer is converted. If
    // conversion waited for every download, this would never finish.
    let releaseLast!: () => void;
    const firstLayerDone = new Promise<void>((resolvePromise) => (releaseLast = resolvePromise));
    const last = digests[2]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(last)) return false;
      void firstLayerDone.then(() => response.writeHead(200, { "content-length": layers[2]!.length }).end(layers[2]));
      return true;
    };
    const order: string[] = [];

    const result = await createChain(`${registry.host}/faults/app:v1`, {
      store: newStore(),
      fsSize: FS_SIZE,
      dockerConfig: false,
      platform: "linux/amd64",
      onProgress: (event) => {
        if (event.type === "layer" && event.state === "done") {
          order.push(`converted ${event.index}`);
          if (event.index === 0) releaseLast();
        }
        if (event.type === "download" && event.layerDone) order.push(`downloaded ${event.layerIndex}`);
      },
    });

    expect(result.chain).toHaveLength(3);
    expect(order.indexOf("converted 0")).toBeLessThan(order.indexOf("downloaded 2"));
  }, 60_000);

  it("abort during a pull leaves nothing behind", async () => {
    const store = newStore();
    const last = digests[2]!;
    // The last blob never arrives, so the pull is still running at the abort.
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(last)) return false;
      response.writeHead(200, { "content-length": layers[2]!.length });
      return true;
    };
    const controller = new AbortController();

    const error = (await createChain(`${registry.host}/faults/app:v1`, {
      store,
      fsSize: FS_SIZE,
      dockerConfig: false,
      platform: "linux/amd64",
      signal: controller.signal,
      onProgress: (event) => {
        if (event.type === "layer" && event.index === 1 && event.state === "done") controller.abort();
      },
    }).catch((caught: unknown) => caught)) as LayerdiskError;

    expect(error.code).toBe("ERR_REGISTRY_ABORTED");
    expect(await leftovers(store)).toEqual([]);
    expect(existsSync(join(store, "blobs", "sha256", last.slice(7)))).toBe(false);
    expect(readdirSync(join(store, "overlays"))).toEqual([]);
  }, 60_000);

  it("wrong-digest blob leaves nothing behind", async () => {
    const store = newStore();
    const digest = digests[1]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(200, { "content-length": layers[1]!.length }).end(Buffer.alloc(layers[1]!.length, 7));
      return true;
    };

    const error = (await createChain(`${registry.host}/faults/app:v1`, { store, fsSize: FS_SIZE, dockerConfig: false, platform: "linux/amd64" }).catch(
      (caught: unknown) => caught,
    )) as LayerdiskError;

    expect(error.code).toBe("ERR_DIGEST_MISMATCH");
    expect(error.digest).toBe(digest);
    expect(error.message).toContain(digest);
    expect(error.message).toContain(`${registry.host}/faults/app:v1`);
    expect(await leftovers(store)).toEqual([]);
    expect(existsSync(join(store, "blobs", "sha256", digest.slice(7)))).toBe(false);
    expect(readdirSync(join(store, "overlays"))).toEqual([]);
    expect(readdirSync(join(store, "images"))).toEqual([]);
  }, 60_000);

  it("404 blob leaves nothing behind", async () => {
    const store = newStore();
    const digest = digests[0]!;
    registry.hook = (_request, response, path) => {
      if (!path.endsWith(digest)) return false;
      response.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "BLOB_UNKNOWN", message: "blob unknown" }] }));
      return true;
    };

    const error = (await createChain(`${registry.host}/faults/app:v1`, { store, fsSize: FS_SIZE, dockerConfig: false, platform: "linux/amd64" }).catch(
      (caught: unknown) => caught,
    )) as LayerdiskError;

    expect(error.code).toBe("ERR_REGISTRY_NOT_FOUND");
    expect(error.digest).toBe(digest);
    expect(error.message).toContain(digest);
    expect(error.message).toContain(`${registry.host}/faults/app:v1`);
    expect(await leftovers(store)).toEqual([]);
    expect(listFiles(join(store, "layers"))).toEqual([]);
    expect(readdirSync(join(store, "overlays"))).toEqual([]);
  }, 60_000);
});
