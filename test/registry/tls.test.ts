/**
 * Pulls over HTTPS from a real CNCF distribution registry (`docker-registry`)
 * on 127.0.0.1 whose certificate a test CA signs, and checks the TLS
 * failures: an untrusted CA, a plain HTTP server, and a redirect from HTTPS
 * to plain HTTP.
 */

import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { createGunzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { RegistryError } from "../../src/errors.js";
import type { PullOptions, PulledImage } from "../../src/registry/pull.js";
import { pullImage } from "../../src/registry/pull.js";
import { sha256File, unverifiedFiles } from "./helpers/cache.js";
import type { TestCertificates } from "./helpers/certificates.js";
import { makeTestCertificates } from "./helpers/certificates.js";
import { FakeRegistry } from "./helpers/fake-registry.js";
import type { RunningRegistry } from "./helpers/registry-server.js";
import { skopeoCopy, startRegistry } from "./helpers/registry-server.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const sharedTestdata =
  process.env.LAYERDISK_SHARED_TESTDATA ??
  [join(repoRoot, "../shared/testdata"), join(repoRoot, "../../shared/testdata")].find((path) => existsSync(path));

const MANIFEST_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
];

let root: string;
let certificates: TestCertificates;
let caPem: Buffer;
let secure: RunningRegistry;
const started: Array<{ stop: () => Promise<void> }> = [];

/** Fetches a manifest's digest over HTTPS without the client under test. */
function manifestDigest(host: string, repository: string, tag: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const [hostname, port] = host.split(":");
    const request = https.get(
      { host: hostname, port: Number(port), path: `/v2/${repository}/manifests/${tag}`, ca: caPem, headers: { accept: MANIFEST_TYPES.join(", ") } },
      (response) => {
        const hash = createHash("sha256");
        response.on("data", (chunk: Buffer) => hash.update(chunk));
        response.on("end", () => resolvePromise(`sha256:${hash.digest("hex")}`));
      },
    );
    request.on("error", reject);
  });
}

async function gunzipDigest(file: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(file), createGunzip(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) hash.update(chunk);
  });
  return `sha256:${hash.digest("hex")}`;
}

function newCache(name: string): string {
  return join(root, "caches", name);
}

/** Pull options with two fast attempts and no Docker config. */
function options(cache: string, extra: Partial<PullOptions> = {}): PullOptions {
  return { blobCache: cache, dockerConfig: false, retry: { attempts: 2, baseDelayMs: 10 }, ...extra };
}

async function pullAll(reference: string, pullOptions: PullOptions): Promise<PulledImage> {
  const image = await pullImage(reference, pullOptions);
  await image.done;
  return image;
}

async function pullError(reference: string, pullOptions: PullOptions): Promise<RegistryError> {
  const caught = await pullAll(reference, pullOptions).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(caught).toBeInstanceOf(RegistryError);
  return caught as RegistryError;
}

beforeAll(async () => {
  const archive = join(sharedTestdata ?? "", "fixtures/busybox-1.31.1.docker.tar");
  for (const path of ["/usr/bin/docker-registry", archive]) {
    if (!existsSync(path)) throw new Error(`TLS registry tests need ${path}; run scripts/install-system-deps.sh and scripts/testdata.sh`);
  }
  root = mkdtempSync(join(tmpdir(), "layerdisk-tls-"));
  const storage = join(root, "storage");
  mkdirSync(storage);
  certificates = makeTestCertificates(root, "registry");
  caPem = readFileSync(certificates.caCertFile);

  secure = await startRegistry(root, storage, { kind: "none" }, "tls", {
    certFile: certificates.serverCertFile,
    keyFile: certificates.serverKeyFile,
    caFile: certificates.caCertFile,
  });
  started.push(secure);
  // skopeoCopy passes --dest-tls-verify=false, so skopeo pushes over HTTPS without checking the certificate.
  await skopeoCopy(`docker-archive:${archive}`, `docker://${secure.host}/busybox:1.31.1`);
}, 180_000);

afterAll(async () => {
  for (const server of started.reverse()) await server.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe("HTTPS registry", () => {
  it("pulls busybox with tls.ca", async () => {
    const cache = newCache("busybox");
    const expectedDigest = await manifestDigest(secure.host, "busybox", "1.31.1");

    const image = await pullAll(`${secure.host}/busybox:1.31.1`, options(cache, { httpsRegistries: [secure.host], tls: { ca: caPem } }));

    expect(image.manifestDigest).toBe(expectedDigest);
    expect(image.layers).toHaveLength(1);
    for (const layer of image.layers) {
      expect(await layer.ready).toBe(layer.file);
      expect(await sha256File(layer.file)).toBe(layer.descriptor.digest);
      expect(readFileSync(layer.file).length).toBe(layer.descriptor.size);
    }
    expect(await sha256File(image.configFile)).toBe(image.configDescriptor.digest);
    const diffIds = await Promise.all(image.layers.map((layer) => gunzipDigest(layer.file)));
    expect(diffIds).toEqual(image.config.rootfs?.diff_ids);
    expect(await unverifiedFiles(cache)).toEqual([]);
  });

  it("accepts tls.ca as PEM strings", async () => {
    const cache = newCache("busybox-strings");

    const image = await pullAll(
      `${secure.host}/busybox:1.31.1`,
      options(cache, { httpsRegistries: [secure.host], tls: { ca: [caPem.toString("utf8")] } }),
    );

    expect(await sha256File(image.layers[0]!.file)).toBe(image.layers[0]!.descriptor.digest);
  });

  it("missing CA is a TLS error", async () => {
    const cache = newCache("no-ca");
    const reference = `${secure.host}/busybox:1.31.1`;

    const error = await pullError(reference, options(cache, { httpsRegistries: [secure.host] }));

    expect(error.code).toBe("ERR_REGISTRY_TLS");
    expect(error.message).toContain(reference);
    expect(error.message).toContain(`TLS certificate of ${secure.host} was rejected`);
    expect(error.message).toContain("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
    expect(error.message).toContain("pass its certificate in the tls.ca option");
    expect(existsSync(cache)).toBe(false);
  });

  it("CA of another registry is a TLS error", async () => {
    const folder = join(root, "other-ca");
    mkdirSync(folder);
    const other = makeTestCertificates(folder, "other");

    const error = await pullError(
      `${secure.host}/busybox:1.31.1`,
      options(newCache("other-ca"), { httpsRegistries: [secure.host], tls: { ca: readFileSync(other.caCertFile) } }),
    );

    expect(error.code).toBe("ERR_REGISTRY_TLS");
    expect(error.message).toContain(secure.host);
  });
});

describe("HTTPS registry from the CLI", () => {
  it("pull takes --https-registry and --ca-file", () => {
    const store = join(root, "cli-store");
    const run = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        join(repoRoot, "src", "cli", "main.ts"),
        "pull",
        "--store",
        store,
        "--json",
        "--https-registry",
        secure.host,
        "--ca-file",
        certificates.caCertFile,
        `${secure.host}/busybox:1.31.1`,
      ],
      { cwd: repoRoot, encoding: "utf8" },
    );

    expect(run.status, run.stderr).toBe(0);
    const record = JSON.parse(run.stdout) as { manifestDigest: string };
    expect(record.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(existsSync(join(store, "blobs", "sha256", record.manifestDigest.slice(7)))).toBe(true);
  });
});

describe("HTTPS to a plain HTTP registry", () => {
  const plain = new FakeRegistry();

  beforeAll(async () => {
    await plain.start();
    started.push(plain);
    plain.addImage("app", "v1", [Buffer.from("layer")]);
  });

  it("handshake failure names the fix", async () => {
    const reference = `${plain.host}/app:v1`;

    const error = await pullError(reference, options(newCache("plain"), { httpsRegistries: [plain.host], tls: { ca: caPem } }));

    expect(error.code).toBe("ERR_REGISTRY_TLS");
    expect(error.message).toContain(reference);
    expect(error.message).toContain(`TLS handshake with ${plain.host} failed`);
    expect(error.message).toContain("wrong version number");
    expect(error.message).toContain("list it in insecureRegistries");
  });
});

describe("redirect from HTTPS to plain HTTP", () => {
  /** Plain HTTP registry that the HTTPS server redirects to. */
  const target = new FakeRegistry();
  let source: https.Server;
  let sourceHost: string;
  let redirectTo: (path: string) => string;

  beforeAll(async () => {
    await target.start();
    started.push(target);
    target.addImage("app", "v1", [Buffer.from("layer")]);

    source = https.createServer({ cert: readFileSync(certificates.serverCertFile), key: readFileSync(certificates.serverKeyFile) }, (request, response) => {
      if (request.url === "/v2/") {
        response.writeHead(200).end("{}");
        return;
      }
      response.writeHead(307, { location: redirectTo(request.url ?? "/") }).end();
    });
    await new Promise<void>((resolvePromise) => source.listen(0, "127.0.0.1", resolvePromise));
    sourceHost = `127.0.0.1:${(source.address() as AddressInfo).port}`;
    started.push({
      stop: () => {
        source.closeAllConnections();
        return new Promise<void>((resolvePromise) => source.close(() => resolvePromise()));
      },
    });
  });

  it("rejects a downgrade to an HTTPS-only host", async () => {
    target.requests.length = 0;
    redirectTo = (path) => `http://${target.host}${path}`;

    const error = await pullError(
      `${sourceHost}/app:v1`,
      options(newCache("redirect-other"), { httpsRegistries: [sourceHost, target.host], tls: { ca: caPem } }),
    );

    expect(error.code).toBe("ERR_REGISTRY_NETWORK");
    expect(error.message).toContain("rejected the redirect");
    expect(error.message).toContain(`to plain HTTP http://${target.host}/v2/app/manifests/v1`);
    expect(target.requests).toEqual([]);
  });

  it("rejects a downgrade to the same host", async () => {
    redirectTo = (path) => `http://${sourceHost}${path}`;

    const error = await pullError(`${sourceHost}/app:v1`, options(newCache("redirect-same"), { httpsRegistries: [sourceHost], tls: { ca: caPem } }));

    expect(error.message).toContain(`rejected the redirect from https://${sourceHost}/v2/app/manifests/v1`);
  });

  it("follows a redirect to plain HTTP on loopback", async () => {
    target.requests.length = 0;
    redirectTo = (path) => `http://${target.host}${path}`;

    await pullAll(`${sourceHost}/app:v1`, options(newCache("redirect-loopback"), { httpsRegistries: [sourceHost], tls: { ca: caPem } }));

    expect(target.requests.map((request) => request.path)).toContain("/v2/app/manifests/v1");
  });
});
