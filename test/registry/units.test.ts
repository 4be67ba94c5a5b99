import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { rootCertificates } from "node:tls";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { parseChallenges } from "../../src/registry/auth/challenge.js";
import { dockerConfigPath, readDockerCredentials } from "../../src/registry/auth/credentials.js";
import { buildTokenRequest, parseTokenResponse } from "../../src/registry/auth/token.js";
import { selectPlatform } from "../../src/registry/manifest.js";
import type { ImageIndex } from "../../src/registry/manifest.js";
import { hostPlatform, parsePlatform, platformMatches } from "../../src/registry/platform.js";
import { DEFAULT_RETRY_POLICY, backoffDelay, isRetryableStatus, parseRetryAfter } from "../../src/registry/retry.js";
import { createLimiter } from "../../src/registry/limiter.js";
import { isLoopbackHost, trustedCertificates } from "../../src/registry/transport.js";

describe("parseChallenges", () => {
  it("reads a Docker Hub bearer challenge", () => {
    const [challenge] = parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
    );

    expect(challenge?.scheme).toBe("bearer");
    expect(challenge?.parameters).toEqual({
      realm: "https://auth.docker.io/token",
      service: "registry.docker.io",
      scope: "repository:library/alpine:pull",
    });
  });

  it("reads several challenges and escapes", () => {
    const challenges = parseChallenges('Basic realm="a \\"b\\"", Bearer realm=x, service="s"');

    expect(challenges).toEqual([
      { scheme: "basic", parameters: { realm: 'a "b"' } },
      { scheme: "bearer", parameters: { realm: "x", service: "s" } },
    ]);
  });

  it("returns nothing for an empty header", () => {
    expect(parseChallenges("")).toEqual([]);
  });
});

describe("readDockerCredentials", () => {
  let folder: string;
  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), "layerdisk-docker-config-"));
  });
  afterEach(() => {
    rmSync(folder, { recursive: true, force: true });
  });

  function writeConfig(auths: object): string {
    const file = join(folder, "config.json");
    writeFileSync(file, JSON.stringify({ auths }));
    return file;
  }

  it("maps Docker Hub to the index key", async () => {
    const file = writeConfig({ "https://index.docker.io/v1/": { auth: Buffer.from("hub:se:cret").toString("base64") } });

    expect(await readDockerCredentials("docker.io", file)).toEqual({ username: "hub", password: "se:cret" });
    expect(await readDockerCredentials("ghcr.io", file)).toBeUndefined();
  });

  it("matches keys with scheme and path", async () => {
    const file = writeConfig({ "http://127.0.0.1:5000/v2/": { username: "u", password: "p" } });

    expect(await readDockerCredentials("127.0.0.1:5000", file)).toEqual({ username: "u", password: "p" });
  });

  it("reads an identity token", async () => {
    const file = writeConfig({ "r.example": { auth: "", identitytoken: "refresh-me" } });

    expect(await readDockerCredentials("r.example", file)).toEqual({ identityToken: "refresh-me" });
  });

  it("returns nothing for a missing file", async () => {
    expect(await readDockerCredentials("r.example", join(folder, "none.json"))).toBeUndefined();
  });

  it("rejects invalid JSON with the file name", async () => {
    const file = join(folder, "config.json");
    writeFileSync(file, "{");

    await expect(readDockerCredentials("r.example", file)).rejects.toMatchObject({
      code: "ERR_REGISTRY_CREDENTIALS_INVALID",
      file,
    });
  });

  it("honours DOCKER_CONFIG", () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: "/etc/dc" })).toBe("/etc/dc/config.json");
    expect(dockerConfigPath({})).toMatch(/\.docker\/config\.json$/);
  });
});

describe("token requests", () => {
  it("sends basic credentials with service and scope", () => {
    const request = buildTokenRequest({ realm: "http://127.0.0.1:1/token", service: "reg" }, "repository:a/b:pull", {
      username: "u",
      password: "p",
    });

    expect(request.method).toBe("GET");
    expect(request.url.searchParams.get("service")).toBe("reg");
    expect(request.url.searchParams.get("scope")).toBe("repository:a/b:pull");
    expect(request.headers.authorization).toBe(`Basic ${Buffer.from("u:p").toString("base64")}`);
  });

  it("posts an identity token as a refresh token", () => {
    const request = buildTokenRequest({ realm: "http://127.0.0.1:1/token" }, "repository:a:pull", { identityToken: "t" });
    const form = new URLSearchParams(request.body!.toString());

    expect(request.method).toBe("POST");
    expect(form.get("grant_type")).toBe("refresh_token");
    expect(form.get("refresh_token")).toBe("t");
    expect(form.get("scope")).toBe("repository:a:pull");
  });

  it("parses token lifetime", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    const token = parseTokenResponse(Buffer.from(JSON.stringify({ access_token: "abc", expires_in: 300 })), now);

    expect(token.authorization).toBe("Bearer abc");
    expect(token.expiresAt).toBe(now + 300_000 - 10_000);
  });

  it("defaults the lifetime to 60 s", () => {
    const token = parseTokenResponse(Buffer.from(JSON.stringify({ token: "abc" })), 0);

    expect(token.expiresAt).toBe(50_000);
  });

  it("rejects a response without a token", () => {
    expect(() => parseTokenResponse(Buffer.from("{}"))).toThrow(/no token/);
  });
});

describe("retry timing", () => {
  it("parses Retry-After seconds and dates", () => {
    const now = Date.parse("Wed, 21 Oct 2026 07:28:00 GMT");

    expect(parseRetryAfter("120", now)).toBe(120_000);
    expect(parseRetryAfter("Wed, 21 Oct 2026 07:28:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("Wed, 21 Oct 2026 07:27:00 GMT", now)).toBe(0);
    expect(parseRetryAfter("soon", now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it("doubles the backoff up to the maximum", () => {
    const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 100, maxDelayMs: 1000 };

    expect(backoffDelay(policy, 0)).toBeGreaterThanOrEqual(100);
    expect(backoffDelay(policy, 0)).toBeLessThanOrEqual(125);
    expect(backoffDelay(policy, 2)).toBeGreaterThanOrEqual(400);
    expect(backoffDelay(policy, 10)).toBeLessThanOrEqual(1250);
  });

  it("retries 429 and most 5xx", () => {
    expect([429, 500, 502, 503, 504, 408].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 404, 501, 505].some(isRetryableStatus)).toBe(false);
  });
});

describe("loopback hosts", () => {
  it.each([
    ["localhost:5000", true],
    ["127.0.0.1", true],
    ["127.3.2.1:80", true],
    ["[::1]:5000", true],
    ["::1", true],
    ["128.0.0.1", false],
    ["registry.example", false],
    ["localhost.example.com", false],
  ])("%s", (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});

describe("platforms", () => {
  const index: ImageIndex = {
    schemaVersion: 2,
    manifests: [
      { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:" + "1".repeat(64), size: 1, platform: { os: "linux", architecture: "amd64" } },
      { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:" + "2".repeat(64), size: 1, platform: { os: "linux", architecture: "arm", variant: "v6" } },
      { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:" + "3".repeat(64), size: 1, platform: { os: "linux", architecture: "arm", variant: "v7" } },
      { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:" + "4".repeat(64), size: 1, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
      { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:" + "5".repeat(64), size: 1, platform: { os: "unknown", architecture: "unknown" } },
    ],
  };

  it("parses os/arch/variant", () => {
    expect(parsePlatform("linux/arm/v7")).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
    expect(parsePlatform("linux/amd64")).toEqual({ os: "linux", architecture: "amd64" });
    expect(() => parsePlatform("linux")).toThrow(/invalid platform "linux"/);
  });

  it("maps the host architecture to OCI names", () => {
    const expected: Record<string, string> = { x64: "amd64", arm64: "arm64" };
    expect(hostPlatform().os).toBe("linux");
    expect(hostPlatform().architecture).toBe(expected[process.arch] ?? hostPlatform().architecture);
  });

  it("selects by variant", () => {
    expect(selectPlatform(index, parsePlatform("linux/arm/v7"), "r", "d").digest).toBe("sha256:" + "3".repeat(64));
    expect(selectPlatform(index, parsePlatform("linux/arm64"), "r", "d").digest).toBe("sha256:" + "4".repeat(64));
    expect(platformMatches(parsePlatform("linux/arm64/v8"), { os: "linux", architecture: "arm64" })).toBe(true);
  });

  it("lists available platforms when missing", () => {
    expect(() => selectPlatform(index, parsePlatform("linux/s390x"), "h/r:t", "sha256:x")).toThrow(
      "h/r:t (index sha256:x) has no image for platform linux/s390x; available: linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64/v8",
    );
  });
});

describe("createLimiter", () => {
  it("runs at most the limit at once", async () => {
    const limit = createLimiter(2);
    let active = 0;
    let maxActive = 0;
    const started: number[] = [];
    const task = (id: number) => async () => {
      started.push(id);
      active += 1;
      maxActive = Math.max(maxActive, active);
      await new Promise((resolve) => setTimeout(resolve, 5 + (id % 3)));
      active -= 1;
      return id;
    };

    const results = await Promise.all([0, 1, 2, 3, 4, 5].map((id) => limit(task(id))));

    expect(results).toEqual([0, 1, 2, 3, 4, 5]);
    expect(maxActive).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("frees the slot when a task fails", async () => {
    const limit = createLimiter(1);

    await expect(limit(() => Promise.reject(new Error("boom")))).rejects.toThrow("boom");

    expect(await limit(() => Promise.resolve("next"))).toBe("next");
  });
});

describe("trustedCertificates", () => {
  const pem = "-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n";
  let savedExtraFile: string | undefined;

  beforeEach(() => {
    savedExtraFile = process.env.NODE_EXTRA_CA_CERTS;
    delete process.env.NODE_EXTRA_CA_CERTS;
  });
  afterEach(() => {
    if (savedExtraFile === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
    else process.env.NODE_EXTRA_CA_CERTS = savedExtraFile;
  });

  it("keeps Node's defaults without tls.ca", () => {
    expect(trustedCertificates()).toBeUndefined();
    expect(trustedCertificates({})).toBeUndefined();
  });

  it("adds tls.ca to the bundled roots", () => {
    const certificates = trustedCertificates({ ca: [pem, Buffer.from(pem)] })!;

    expect(certificates).toHaveLength(rootCertificates.length + 2);
    expect(certificates.slice(0, rootCertificates.length)).toEqual([...rootCertificates]);
    expect(certificates.at(-1)).toEqual(Buffer.from(pem));
  });

  it("keeps NODE_EXTRA_CA_CERTS", () => {
    const folder = mkdtempSync(join(tmpdir(), "layerdisk-ca-"));
    const extraFile = join(folder, "extra.pem");
    writeFileSync(extraFile, pem);
    process.env.NODE_EXTRA_CA_CERTS = extraFile;
    try {
      const certificates = trustedCertificates({ ca: pem })!;

      expect(certificates).toHaveLength(rootCertificates.length + 2);
      expect(certificates.at(-1)).toEqual(Buffer.from(pem));
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});
