import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

import { describe, expect, it } from "vitest";

import { chainIds, sha256Digest } from "../../src/image/digest.js";
import { hostPlatform, parsePlatform, platformMatches } from "../../src/image/platform.js";
import { parseReference } from "../../src/image/reference.js";
import { resolveImage } from "../../src/image/resolve.js";
import { buildLayout, makeTar, rejection, sha256, tempDir, writeBlob, writeImage, writeIndex } from "./builder.js";
import { unpack } from "./testdata.js";

const INDEX = "application/vnd.oci.image.index.v1+json";
const REF_NAME = "org.opencontainers.image.ref.name";

async function tarWith(name: string): Promise<Buffer> {
  return makeTar([{ name, content: name }]);
}

/** Builds a layout whose index.json points to a nested index of three platforms, with arm64's blobs deleted. */
async function multiPlatformLayout(): Promise<string> {
  const layout = join(tempDir(), "multi");
  mkdirSync(layout, { recursive: true });
  const amd64 = writeImage(layout, { layers: [{ tar: await tarWith("amd64") }] });
  const armv7 = writeImage(layout, { architecture: "arm", variant: "v7", layers: [{ tar: await tarWith("armv7") }] });
  const arm64 = writeImage(layout, { architecture: "arm64", layers: [{ tar: await tarWith("arm64") }] });
  rmSync(join(layout, "blobs/sha256", arm64.digest.slice(7)));

  const manifests = [amd64, armv7, arm64].map(({ mediaType, digest, size, platform }) => ({ mediaType, digest, size, platform }));
  manifests.push({ mediaType: amd64.mediaType, digest: amd64.digest, size: amd64.size, platform: { os: "unknown", architecture: "unknown" } });
  const nested = writeBlob(layout, Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests })));
  writeIndex(layout, [{ mediaType: INDEX, ...nested, annotations: { [REF_NAME]: "v1" } }]);
  return layout;
}

describe("platform selection", () => {
  it("nested index selects requested platform", async () => {
    const layout = await multiPlatformLayout();
    const { image, target } = await unpack(`oci-layout:${layout}:v1`, { platform: "linux/arm/v7" });
    expect(image.platform).toEqual({ os: "linux", architecture: "arm", variant: "v7" });
    expect(target.lookup("/armv7")).toBeDefined();
  });

  it("partial export works for present platform", async () => {
    const { target } = await unpack(await multiPlatformLayout(), { platform: "linux/amd64" });
    expect(target.lookup("/amd64")).toBeDefined();
  });

  it("absent platform blob fails naming digest", async () => {
    const error = await rejection(resolveImage(await multiPlatformLayout(), { platform: "linux/arm64" }));
    expect(error.code).toBe("ERR_IMAGE_BLOB_NOT_FOUND");
    expect(error.digest).toMatch(/^sha256:/);
  });

  it("missing platform lists available ones", async () => {
    const error = await rejection(resolveImage(await multiPlatformLayout(), { platform: "linux/s390x" }));
    expect(error.code).toBe("ERR_IMAGE_PLATFORM_NOT_FOUND");
    expect(error.message).toContain("linux/s390x");
    expect(error.message).toContain("platforms available: linux/amd64, linux/arm/v7, linux/arm64.");
  });

  it("host platform maps node arch", () => {
    const host = hostPlatform();
    expect(host.os).toBe("linux");
    const expected: Record<string, string> = { x64: "amd64", arm64: "arm64" };
    if (expected[process.arch] !== undefined) expect(host.architecture).toBe(expected[process.arch]);
  });

  it("platform matching rules", () => {
    expect(platformMatches({ os: "linux", architecture: "arm64" }, parsePlatform("linux/arm64/v8"))).toBe(true);
    expect(platformMatches({ os: "linux", architecture: "arm", variant: "v6" }, parsePlatform("linux/arm/v7"))).toBe(false);
    expect(platformMatches({ os: "linux", architecture: "arm", variant: "v6" }, parsePlatform("linux/arm"))).toBe(true);
    expect(() => parsePlatform("linux")).toThrow(/os\/arch/);
  });
});

describe("docker media types", () => {
  it("manifest list and schema 2 manifest", async () => {
    const layout = join(tempDir(), "docker-types");
    const tar = await tarWith("docker");
    const layer = writeBlob(layout, gzipSync(tar));
    const config = writeBlob(
      layout,
      Buffer.from(JSON.stringify({ os: "linux", architecture: "arm64", variant: "v8", rootfs: { type: "layers", diff_ids: [sha256(tar)] } })),
    );
    const manifest = writeBlob(
      layout,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.docker.distribution.manifest.v2+json",
          config: { mediaType: "application/vnd.docker.container.image.v1+json", ...config },
          layers: [{ mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", ...layer }],
        }),
      ),
    );
    const list = writeBlob(
      layout,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: "application/vnd.docker.distribution.manifest.list.v2+json",
          manifests: [{ mediaType: "application/vnd.docker.distribution.manifest.v2+json", ...manifest, platform: { os: "linux", architecture: "arm64", variant: "v8" } }],
        }),
      ),
    );
    writeIndex(layout, [{ mediaType: "application/vnd.docker.distribution.manifest.list.v2+json", ...list }]);

    const { image, target } = await unpack(layout, { platform: "linux/arm64" });
    expect(image.manifestMediaType).toBe("application/vnd.docker.distribution.manifest.v2+json");
    expect(image.layers[0]!.compression).toBe("gzip");
    expect(target.readdir("/")).toEqual(["docker"]);
  });
});

describe("references", () => {
  it("layout path with colons and tag", async () => {
    const dir = tempDir();
    const layout = buildLayout({ layers: [{ tar: await tarWith("a") }] }, join(dir, "with:colon"));
    expect(parseReference(`oci-layout:${layout}`)).toEqual({ kind: "oci-layout", path: layout });
    expect(parseReference(`oci-layout:${layout}:latest`)).toEqual({ kind: "oci-layout", path: layout, tag: "latest" });
    expect(parseReference(`${layout}:latest`)).toEqual({ kind: undefined, path: layout, tag: "latest" });
    await expect(resolveImage(`oci-layout:${layout}:latest`)).resolves.toMatchObject({ source: "oci-layout" });
  });

  it("digest reference selects manifest", async () => {
    const layout = buildLayout({ layers: [{ tar: await tarWith("a") }] });
    const image = await resolveImage(layout);
    const byDigest = await resolveImage(`oci-layout:${layout}@${image.manifestDigest}`);
    expect(byDigest.configDigest).toBe(image.configDigest);
  });

  it("unknown tag lists tags", async () => {
    const layout = buildLayout({ layers: [{ tar: await tarWith("a") }] });
    const error = await rejection(resolveImage(`oci-layout:${layout}:v9`));
    expect(error.code).toBe("ERR_IMAGE_TAG_NOT_FOUND");
    expect(error.message).toContain("tags present: latest");
  });

  it("missing path fails", async () => {
    const error = await rejection(resolveImage("/nonexistent/layerdisk/image"));
    expect(error.code).toBe("ERR_IMAGE_NOT_FOUND");
  });

  it("oci-archive and docker-archive with index.json", async () => {
    const layout = buildLayout({ layers: [{ tar: await tarWith("a") }] });
    const archive = join(tempDir(), "image.tar");
    execFileSync("tar", ["-cf", archive, "-C", layout, "."]);
    const fromOci = await unpack(`oci-archive:${archive}`);
    expect(fromOci.image.source).toBe("oci-archive");
    const fromDocker = await unpack(`docker-archive:${archive}`);
    expect(fromDocker.image.manifestDigest).toBe(fromOci.image.manifestDigest);
    expect(fromDocker.target.lookup("/a")).toBeDefined();
  });

  it("gzip oci-archive streams members", async () => {
    const layout = buildLayout({ layers: [{ tar: await tarWith("a") }, { tar: await tarWith("b"), compression: "zstd" }] });
    const archive = join(tempDir(), "image.tar.gz");
    execFileSync("tar", ["-czf", archive, "-C", layout, "."]);
    const { image, target } = await unpack(archive);
    expect(image.layers.map((l) => l.location.kind)).toEqual(["gzip-member", "gzip-member"]);
    expect(target.readdir("/").sort()).toEqual(["a", "b"]);
  });
});

describe("image ids", () => {
  it("chain ids follow the OCI rule", () => {
    const a = sha256Digest("a");
    const b = sha256Digest("b");
    const c = sha256Digest("c");
    const ab = sha256Digest(`${a} ${b}`);
    expect(chainIds([a, b, c])).toEqual([a, ab, sha256Digest(`${ab} ${c}`)]);
  });

  it("config fields are parsed", async () => {
    const image = await resolveImage(buildLayout({ layers: [{ tar: await tarWith("a") }] }));
    expect(image.config.config).toMatchObject({ Entrypoint: ["/bin/sh"], Cmd: ["-c", "true"], Env: ["PATH=/bin"], WorkingDir: "/", User: "0:0" });
    expect(image.chainIds).toEqual(image.diffIds);
  });
});
