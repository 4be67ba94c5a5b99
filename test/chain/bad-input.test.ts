// Bad images through createChain: each fails with a stable code naming the
// digest or path, and the store publishes nothing for the failed layer: no
// layer file, no image record, no overlay, no visible temporary file.

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { createChain } from "../../src/chain/create.js";
import { LayerdiskError } from "../../src/errors.js";
import { buildLayout, makeTar, sha256, writeImage, writeIndex, type LayerSpec } from "../image/builder.js";
import { hasImage, testdataDir } from "../image/testdata.js";
import { listChain } from "./oracles.js";

const scratch = mkdtempSync(join(tmpdir(), "layerdisk-bad-input-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let count = 0;
function newStore(): string {
  count += 1;
  return join(scratch, `store-${count}`);
}

/** Lists every file the store publishes (no folders, locks or hidden temporaries). */
function publishedFiles(store: string): string[] {
  const files: string[] = [];
  for (const folder of ["layers", "images", "overlays"]) {
    const walk = (path: string) => {
      if (!existsSync(path)) return;
      for (const entry of readdirSync(path, { withFileTypes: true })) {
        if (entry.isDirectory()) walk(join(path, entry.name));
        else files.push(join(path, entry.name).slice(store.length + 1));
      }
    };
    walk(join(store, folder));
  }
  return files.sort();
}

async function failure(reference: string, store: string, platform?: string): Promise<LayerdiskError> {
  try {
    await createChain(reference, { store, platform });
  } catch (error) {
    expect(error).toBeInstanceOf(LayerdiskError);
    return error as LayerdiskError;
  }
  throw new Error(`createChain(${reference}) succeeded but was expected to fail`);
}

const goodTar = () => makeTar([{ name: "etc/", type: "directory" }, { name: "etc/hello", content: "hello\n" }]);

describe("createChain with bad input", () => {
  const cases: Array<[string, () => Promise<LayerSpec>]> = [
    ["wrong blob digest", async () => ({ tar: await goodTar(), tamper: (blob) => Buffer.concat([blob, Buffer.from("x")]) })],
    ["truncated blob", async () => ({ tar: await goodTar(), tamper: (blob) => blob.subarray(0, blob.length - 10) })],
    ["wrong diff_id", async () => ({ tar: await goodTar(), diffId: sha256("not this layer") })],
    ["corrupt gzip", async () => ({ tar: await goodTar(), corrupt: (blob) => Buffer.concat([blob.subarray(0, 20), Buffer.alloc(40, 0xa5)]) })],
    [
      "corrupt zstd",
      async () => ({ tar: await goodTar(), compression: "zstd", corrupt: (blob) => Buffer.concat([blob.subarray(0, 12), Buffer.alloc(40, 0x5a)]) }),
    ],
    ["unknown media type", async () => ({ tar: await goodTar(), mediaType: "application/vnd.example.layer.v1.squashfs" })],
  ];

  it.each(cases)("%s publishes nothing", async (_name, makeLayer) => {
    const layer = await makeLayer();
    const layout = buildLayout({ layers: [layer] });
    const store = newStore();

    const error = await failure(`oci-layout:${layout}`, store);

    expect(error.code).toMatch(/^ERR_[A-Z0-9_]+$/);
    expect(error.message).toMatch(/sha256:[0-9a-f]{12}|application\/vnd\.example/);
    expect(publishedFiles(store)).toEqual([]);
  });

  it("bad upper layer keeps only the good base", async () => {
    const layout = buildLayout({
      layers: [{ tar: await goodTar() }, { tar: await makeTar([{ name: "etc/other", content: "x" }]), diffId: sha256("wrong") }],
    });
    const store = newStore();

    const error = await failure(`oci-layout:${layout}`, store);

    expect(error.message).toContain(sha256("wrong"));
    const published = publishedFiles(store);
    expect(published.filter((file) => file.startsWith("images/") || file.startsWith("overlays/"))).toEqual([]);
    expect(published.filter((file) => file.endsWith(".qcow2"))).toHaveLength(1);
  });

  it("missing platform lists the available ones", async () => {
    const layout = join(scratch, `platforms-${count}`);
    const amd64 = writeImage(layout, { layers: [{ tar: await goodTar() }] });
    const arm64 = writeImage(layout, { layers: [{ tar: await goodTar() }], architecture: "arm64" });
    writeIndex(layout, [amd64, arm64]);
    const store = newStore();

    const error = await failure(`oci-layout:${layout}`, store, "linux/s390x");

    expect(error.code).toBe("ERR_IMAGE_PLATFORM_NOT_FOUND");
    expect(error.message).toContain("linux/amd64, linux/arm64");
    expect(publishedFiles(store)).toEqual([]);
  });

  it("paths with .. and / stay inside the image", async () => {
    const layout = buildLayout({
      layers: [
        {
          tar: await makeTar([
            { name: "/abs/file", content: "absolute\n" },
            { name: "../../escape/file", content: "dots\n" },
            { name: "dir/../../../up", content: "up\n" },
          ]),
        },
      ],
    });
    const result = await createChain(`oci-layout:${layout}`, { store: newStore() });
    const listing = listChain(result.disk);

    expect(listing).toContain("/abs/file type=f");
    expect(listing).toContain("/escape/file type=f");
    expect(listing).toContain("/up type=f");
    expect(existsSync(join(scratch, "escape"))).toBe(false);
  });
});

describe.skipIf(!hasImage("debian-minbase"))("createChain on a full disk", () => {
  const mountpoint = join(scratch, "small");

  afterAll(() => {
    execFileSync("umount", ["-l", mountpoint], { stdio: "ignore" });
  });

  it("fails with ENOSPC and publishes nothing", async () => {
    mkdirSync(mountpoint, { recursive: true });
    // Room for the store's records but not for the 100 MiB minbase layer.
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mountpoint]);
    const store = join(mountpoint, "store");

    const error = await failure(`oci-layout:${join(testdataDir, "debian-minbase")}:latest`, store);

    expect(error.message).toMatch(/No space left on device|ENOSPC/);
    expect(publishedFiles(store)).toEqual([]);
    expect(readdirSync(join(store, "layers"), { recursive: true }).filter((name) => String(name).endsWith(".qcow2"))).toEqual([]);
  });
});
