// createChain on every test image, checked with the reference tools: each
// layer file passes qemu-img check, the filesystem each layer leaves passes
// e2fsck -fn, and the kernel's view of the top equals the reference unpack.

import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { createChain, type CreateChainResult } from "../../src/chain/create.js";
import type { ChainProgress } from "../../src/chain/types.js";
import { fixtureReference, fixturesDir, hasImage, ociArchiveOf, testdataDir } from "../image/testdata.js";
import { e2fsck, listChain, listDirectory, listingDifferences, qemuImgCheck, sha256File } from "./oracles.js";

const scratch = mkdtempSync(join(tmpdir(), "layerdisk-create-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let storeCount = 0;
function newStore(): string {
  storeCount += 1;
  return join(scratch, `store-${storeCount}`);
}

/** Returns the store root of a result whose chain is in `ROOT/layers/PARAMS/`. */
function storeOf(result: CreateChainResult): string {
  return join(result.chain[0]!, "..", "..", "..");
}

function expectCleanChain(result: CreateChainResult): void {
  for (const file of [...result.chain, result.disk]) {
    const check = qemuImgCheck(file);
    expect(check.output, `qemu-img check ${file}`).toContain("No errors were found");
    expect(check.status, `qemu-img check ${file}`).toBe(0);
  }
  for (const file of result.chain) {
    const fsck = e2fsck(file);
    expect(fsck.status, `e2fsck -fn on the chain under ${file}:\n${fsck.output}`).toBe(0);
  }
}

function expectTree(result: CreateChainResult, expected: string, options: { mtime?: boolean } = {}): void {
  const actual = listChain(result.disk, options);
  expect(listingDifferences(expected, actual)).toEqual([]);
  expect(actual).toBe(expected);
}

const corpus = ["debian-minbase", "debian-python", "edge", "debian-python-zstd"].filter(hasImage);

describe.skipIf(corpus.length === 0)("createChain on the test corpus", () => {
  const converted = new Map<string, CreateChainResult>();

  it.each(corpus)("%s from its OCI layout", async (name) => {
    const result = await createChain(`oci-layout:${join(testdataDir, name)}:latest`, { store: newStore() });
    converted.set(name, result);

    expect(result.fsType).toBe("ext4");
    expect(existsSync(join(storeOf(result), "blobs", "sha256", result.configDigest.slice(7)))).toBe(true);
    expect(existsSync(join(storeOf(result), "blobs", "sha256", result.manifestDigest.slice(7)))).toBe(true);
    expect(result.chain).toHaveLength(result.chainIds.length);
    expectCleanChain(result);
    expectTree(result, listDirectory(join(testdataDir, `${name}.rootfs`), { mtime: name === "edge" }), {
      mtime: name === "edge",
    });
  });

  it("zstd layers give the gzip image's bytes", async () => {
    const gzip = converted.get("debian-python");
    const zstd = converted.get("debian-python-zstd");
    if (!gzip || !zstd) return;
    expect(zstd.chainIds).toEqual(gzip.chainIds);
    expect(zstd.chain.map(sha256File)).toEqual(gzip.chain.map(sha256File));
  });

  // The same layers from another on-disk form must give byte-identical files,
  // which proves the same tree without mounting again.
  const forms = corpus.flatMap((name) => {
    const list: Array<[string, string, () => string]> = [[name, "oci-archive", () => `oci-archive:${ociArchiveOf(name)}`]];
    if (existsSync(join(testdataDir, `${name}.docker.tar`))) {
      list.push([name, "docker-archive", () => `docker-archive:${join(testdataDir, `${name}.docker.tar`)}`]);
    }
    return list;
  });

  it.each(forms)("%s as %s gives identical layer files", async (name, _form, reference) => {
    const layout = converted.get(name);
    if (!layout) return;
    const result = await createChain(reference(), { store: newStore() });
    expect(result.chainIds).toEqual(layout.chainIds);
    expect(result.chain.map(sha256File)).toEqual(layout.chain.map(sha256File));
  });
});

const fixtures: Array<[string, string, string | undefined]> = [
  ["busybox-1.31.1.docker.tar", "docker-archive", undefined],
  ["alpine-3.10.docker.tar.gz", "docker-archive", undefined],
  ["dive-test-docker-image.tar", "docker-archive", undefined],
  ["buildkit-zstd.oci.tar", "oci-archive", "linux/arm64"],
];

describe.skipIf(!existsSync(fixturesDir))("createChain on real Docker Hub images", () => {
  it.each(fixtures)("%s", async (fixture, transport, platform) => {
    const skopeoArgs = platform === undefined ? [] : ["--override-arch", "arm64"];
    const expected = fixtureReference(fixture, transport, skopeoArgs);
    const result = await createChain(`${transport}:${join(fixturesDir, fixture)}`, { store: newStore(), platform });

    expectCleanChain(result);
    expectTree(result, expected);
  });
});

describe.skipIf(!hasImage("debian-python"))("layer sharing", () => {
  it("converts a shared base layer once", async () => {
    const store = newStore();
    const events: ChainProgress[] = [];
    const minbase = await createChain(`oci-layout:${join(testdataDir, "debian-minbase")}:latest`, { store });
    const python = await createChain(`oci-layout:${join(testdataDir, "debian-python")}:latest`, {
      store,
      onProgress: (event) => events.push(event),
    });

    expect(python.chain[0]).toBe(minbase.chain[0]);
    const baseStates = events.flatMap((event) => (event.type === "layer" && event.index === 0 ? [event.state] : []));
    expect(baseStates).toEqual(["cached"]);
    const layerFiles = readdirSync(join(store, "layers", readdirSync(join(store, "layers"))[0]!));
    expect(layerFiles.filter((file) => file.endsWith(".qcow2"))).toHaveLength(3);
  });
});
