import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { describe, expect, it } from "vitest";

import { cached, fixtureReference, fixturesDir, hasImage, hasTool, listImage, listTree, ociArchiveOf, testdataDir, unpack } from "./testdata.js";

const corpus = [
  { name: "debian-minbase", forms: ["oci-layout", "docker-archive", "oci-archive"] },
  { name: "debian-python", forms: ["oci-layout", "docker-archive", "oci-archive"] },
  { name: "edge", forms: ["oci-layout", "docker-archive", "oci-archive", "bare-layout", "bare-docker"] },
  { name: "debian-python-zstd", forms: ["oci-layout", "oci-archive"] },
];

function referenceFor(name: string, form: string): string {
  const layout = join(testdataDir, name);
  switch (form) {
    case "oci-layout":
      return `oci-layout:${layout}:latest`;
    case "docker-archive":
      return `docker-archive:${layout}.docker.tar`;
    case "oci-archive":
      return `oci-archive:${ociArchiveOf(name)}`;
    case "bare-layout":
      return layout;
    default:
      return `${layout}.docker.tar`;
  }
}

describe("make-images corpus", () => {
  for (const { name, forms } of corpus) {
    for (const form of forms) {
      it.skipIf(!hasImage(name))(`${name} from ${form} matches expected listing`, async () => {
        const expected = readFileSync(join(testdataDir, `${name}.expected.txt`), "utf8");
        const actual = await listImage(referenceFor(name, form));
        expect(actual === expected, firstDifference(expected, actual)).toBe(true);
      });
    }
  }

  it.skipIf(!hasImage("edge"))("edge mtimes match reference tree", async () => {
    const listing = cached("edge.expected-mtime.txt", (path) => {
      writeFileSync(path, listTree(join(testdataDir, "edge.rootfs"), true), "utf8");
    });
    const expected = readFileSync(listing, "utf8");
    const actual = await listImage(`oci-layout:${join(testdataDir, "edge")}`, { mtime: true });
    expect(actual === expected, firstDifference(expected, actual)).toBe(true);
  });

  it.skipIf(!hasImage("debian-python"))("debian-python resolves ids and config", async () => {
    const { image } = await unpack(`oci-layout:${join(testdataDir, "debian-python")}`);
    expect(image.layers).toHaveLength(3);
    expect(image.diffIds).toHaveLength(3);
    expect(image.chainIds[0]).toBe(image.diffIds[0]);
    expect(image.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(image.config.rootfs.type).toBe("layers");
    expect(image.platform.os).toBe("linux");
  });
});

const fixtureCases = [
  { fixture: "busybox-1.31.1.docker.tar", transport: "docker-archive", reference: "docker-archive:", options: {} },
  { fixture: "alpine-3.10.docker.tar.gz", transport: "docker-archive", reference: "docker-archive:", options: {} },
  { fixture: "dive-test-docker-image.tar", transport: "docker-archive", reference: "", options: {} },
  {
    fixture: "buildkit-zstd.oci.tar",
    transport: "oci-archive",
    reference: "oci-archive:",
    options: { platform: "linux/arm64" },
    skopeo: ["--override-arch", "arm64"],
  },
];

describe("real image fixtures", () => {
  const tools = hasTool("skopeo") && hasTool("umoci");
  for (const { fixture, transport, reference, options, skopeo } of fixtureCases) {
    it.skipIf(!tools)(`${fixture} matches skopeo and umoci`, async () => {
      const expected = fixtureReference(fixture, transport, skopeo);
      const actual = await listImage(`${reference}${join(fixturesDir, fixture)}`, options);
      expect(actual === expected, firstDifference(expected, actual)).toBe(true);
    });
  }
});

/** Names the first differing line, so a failure shows one path instead of a 7,000-line diff. */
function firstDifference(expected: string, actual: string): string {
  const a = expected.split("\n");
  const b = actual.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return `line ${i + 1}:\n  expected: ${a[i]?.slice(0, 400)}\n  actual:   ${b[i]?.slice(0, 400)}`;
  }
  return "listings are equal";
}
