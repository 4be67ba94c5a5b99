import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

import { describe, expect, it } from "vitest";

import { normalizeImageName } from "../../src/image/docker-archive.js";
import { parseReference } from "../../src/image/reference.js";
import { resolveImage } from "../../src/image/resolve.js";
import { makeTar, rejection, sha256, tempDir } from "./builder.js";
import { unpack } from "./testdata.js";

interface LegacyImage {
  tags: string[];
  layers: Buffer[];
  gzip?: boolean;
}

/** Writes a legacy `docker save` archive (manifest.json, config and layer files) and returns its path. */
function writeLegacyArchive(images: LegacyImage[]): string {
  const dir = join(tempDir(), "content");
  mkdirSync(dir, { recursive: true });
  const manifest = images.map((image) => {
    const layerNames = image.layers.map((tar) => {
      const blob = image.gzip === true ? gzipSync(tar) : tar;
      const name = `${sha256(blob).slice(7)}.tar`;
      writeFileSync(join(dir, name), blob);
      return name;
    });
    const config = JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: image.layers.map((t) => sha256(t)) } });
    const configName = `${sha256(config).slice(7)}.json`;
    writeFileSync(join(dir, configName), config);
    return { Config: configName, RepoTags: image.tags, Layers: layerNames };
  });
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  const archive = join(dir, "..", "images.tar");
  execFileSync("tar", ["-cf", archive, "-C", dir, "."]);
  return archive;
}

describe("legacy docker-archive", () => {
  it("image name selects from several", async () => {
    const archive = writeLegacyArchive([
      { tags: ["docker.io/library/first:latest"], layers: [await makeTar([{ name: "first" }])] },
      { tags: ["example.com/team/second:v2"], layers: [await makeTar([{ name: "second" }])], gzip: true },
    ]);
    const first = await unpack(`docker-archive:${archive}:first`);
    expect(first.target.readdir("/")).toEqual(["first"]);
    const second = await unpack(`docker-archive:${archive}:example.com/team/second:v2`);
    expect(second.target.readdir("/")).toEqual(["second"]);
    expect(second.image.layers[0]!.compression).toBe("gzip");
    expect(second.image.manifestDigest).toBeUndefined();
  });

  it("several images without a name fail", async () => {
    const archive = writeLegacyArchive([
      { tags: ["a:1"], layers: [await makeTar([{ name: "a" }])] },
      { tags: ["b:1"], layers: [await makeTar([{ name: "b" }])] },
    ]);
    const error = await rejection(resolveImage(`docker-archive:${archive}`));
    expect(error.code).toBe("ERR_IMAGE_AMBIGUOUS");
    expect(error.message).toContain("a:1, b:1");
  });

  it("unknown image name lists images", async () => {
    const archive = writeLegacyArchive([{ tags: ["a:1"], layers: [await makeTar([{ name: "a" }])] }]);
    const error = await rejection(resolveImage(`docker-archive:${archive}:zzz:9`));
    expect(error.code).toBe("ERR_IMAGE_TAG_NOT_FOUND");
    expect(error.message).toContain("images present: a:1");
  });

  it("layer named by digest is verified", async () => {
    const tar = await makeTar([{ name: "a" }]);
    const archive = writeLegacyArchive([{ tags: [], layers: [tar] }]);
    const image = await resolveImage(archive);
    expect(image.layers[0]!.digest).toBe(sha256(tar));
    expect(image.source).toBe("docker-archive");
  });

  it("reference splits path and image name", () => {
    const archive = writeLegacyArchive([]);
    expect(parseReference(`docker-archive:${archive}:busybox:1.36`)).toEqual({ kind: "docker-archive", path: archive, imageName: "busybox:1.36" });
  });

  it.each([
    ["busybox", "docker.io/library/busybox:latest"],
    ["user/app:1", "docker.io/user/app:1"],
    ["localhost:5000/app", "localhost:5000/app:latest"],
    ["example.com/a/b:v", "example.com/a/b:v"],
  ])("normalizes %s", (name, expected) => {
    expect(normalizeImageName(name)).toBe(expected);
  });
});
