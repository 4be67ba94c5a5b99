import { readdirSync, readlinkSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { describe, expect, it } from "vitest";

import { ImageError } from "../../src/errors.js";
import { openLayer, readLayerEntries } from "../../src/image/layer-stream.js";
import { resolveImage } from "../../src/image/resolve.js";
import { renderListTree } from "../../src/layer/list-tree.js";
import { rawTar } from "../tar/raw-tar.js";
import { buildLayout, compress, makeTar, rejection, sha256, writeBlob, writeIndex, type LayerSpec } from "./builder.js";
import { unpack } from "./testdata.js";

const files = [
  { name: "etc/", type: "directory" as const },
  { name: "etc/hostname", content: "layerdisk\n" },
  { name: "big.bin", content: Buffer.alloc(300_000, 7) },
];

async function layer(overrides: Partial<LayerSpec> = {}): Promise<LayerSpec> {
  return { tar: await makeTar(files), ...overrides };
}

/** Applies every layer and returns the error it rejects with. */
async function failure(layout: string): Promise<ImageError> {
  const error = await unpack(`oci-layout:${layout}`).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ImageError);
  return error as ImageError;
}

describe("layer verification", () => {
  it("valid gzip layer applies", async () => {
    const { target } = await unpack(`oci-layout:${buildLayout({ layers: [await layer()] })}`);
    expect(target.lookup("/etc/hostname")?.content?.toString()).toBe("layerdisk\n");
  });

  it("valid zstd and plain layers apply", async () => {
    const layout = buildLayout({ layers: [await layer({ compression: "zstd" }), await layer({ compression: "none" })] });
    const { target } = await unpack(`oci-layout:${layout}`);
    expect(target.lookup("/big.bin")?.size).toBe(300_000);
  });

  it("multi-frame zstd and gzip layers apply", async () => {
    const tar = await makeTar(files);
    const half = 4096;
    const frames = (compression: "gzip" | "zstd"): Buffer =>
      Buffer.concat([compress(tar.subarray(0, half), compression), compress(tar.subarray(half), compression)]);
    const layout = buildLayout({
      layers: [
        { tar, compression: "zstd", corrupt: () => frames("zstd") },
        { tar, compression: "gzip", corrupt: () => frames("gzip") },
      ],
    });
    const { target } = await unpack(`oci-layout:${layout}`);
    expect(target.lookup("/big.bin")?.size).toBe(300_000);
  });

  it("wrong blob digest fails naming it", async () => {
    const spec = await layer({ tamper: (blob) => Buffer.concat([blob.subarray(0, -1), Buffer.from([blob.at(-1)! ^ 0xff])]) });
    const layout = buildLayout({ layers: [spec] });
    const digest = (await resolveImage(layout)).layers[0]!.digest!;
    const error = await failure(layout);
    expect(error.code).toBe("ERR_IMAGE_DIGEST_MISMATCH");
    expect(error.digest).toBe(digest);
    expect(error.message).toContain(`expected ${digest}, got sha256:`);
  });

  it("truncated blob fails with size mismatch", async () => {
    const layout = buildLayout({ layers: [await layer()] });
    const image = await resolveImage(layout);
    const blob = image.layers[0]!;
    truncateSync(join(layout, "blobs/sha256", blob.digest!.slice(7)), blob.size - 100);
    const error = await failure(layout);
    expect(error.code).toBe("ERR_IMAGE_SIZE_MISMATCH");
    expect(error.digest).toBe(blob.digest);
    expect(error.message).toContain(`expected ${blob.size} bytes, got ${blob.size - 100}`);
  });

  it("longer blob fails with size mismatch", async () => {
    const spec = await layer({ tamper: (blob) => Buffer.concat([blob, Buffer.alloc(10)]) });
    const error = await failure(buildLayout({ layers: [spec] }));
    expect(error.code).toBe("ERR_IMAGE_SIZE_MISMATCH");
  });

  it("wrong diff_id fails naming it", async () => {
    const wrong = sha256("not this layer");
    const error = await failure(buildLayout({ layers: [await layer({ diffId: wrong })] }));
    expect(error.code).toBe("ERR_IMAGE_DIGEST_MISMATCH");
    expect(error.digest).toBe(wrong);
    expect(error.message).toContain("diff_id");
  });

  it("corrupt gzip fails to decompress", async () => {
    const corrupt = (blob: Buffer): Buffer => {
      const copy = Buffer.from(blob);
      copy.fill(0x55, 40, 200);
      return copy;
    };
    const layout = buildLayout({ layers: [await layer({ corrupt })] });
    const digest = (await resolveImage(layout)).layers[0]!.digest!;
    const error = await failure(layout);
    expect(error.code).toBe("ERR_IMAGE_DECOMPRESS");
    expect(error.digest).toBe(digest);
    expect(error.message).toContain(digest);
  });

  it("corrupt zstd fails to decompress", async () => {
    const corrupt = (blob: Buffer): Buffer => {
      const copy = Buffer.from(blob);
      copy.fill(0xff, 20, 120);
      return copy;
    };
    const layout = buildLayout({ layers: [await layer({ compression: "zstd", corrupt })] });
    const error = await failure(layout);
    const digest = (await resolveImage(layout)).layers[0]!.digest!;
    expect(error.code).toBe("ERR_IMAGE_DECOMPRESS");
    expect(error.message).toContain(digest);
  });

  it("truncated zstd stream fails", async () => {
    const layout = buildLayout({ layers: [await layer({ compression: "zstd", corrupt: (blob) => blob.subarray(0, blob.length - 50) })] });
    const error = await failure(layout);
    expect(error.code).toBe("ERR_IMAGE_DECOMPRESS");
  });

  it("unknown media type fails naming it", async () => {
    const layout = buildLayout({ layers: [await layer({ mediaType: "application/vnd.example.layer.v1.tar+lz4" })] });
    const error = await rejection(resolveImage(layout));
    expect(error.code).toBe("ERR_IMAGE_UNSUPPORTED_MEDIA_TYPE");
    expect(error.message).toContain("application/vnd.example.layer.v1.tar+lz4");
    expect(error.message).toMatch(/sha256:[0-9a-f]{64}/);
  });

  it("missing layer blob fails at resolve", async () => {
    const layout = buildLayout({ layers: [await layer()] });
    const index = JSON.parse((await import("node:fs")).readFileSync(join(layout, "index.json"), "utf8"));
    const manifestPath = join(layout, "blobs/sha256", index.manifests[0].digest.slice(7));
    const manifest = JSON.parse((await import("node:fs")).readFileSync(manifestPath, "utf8"));
    manifest.layers[0].digest = sha256("absent");
    const blob = writeBlob(layout, Buffer.from(JSON.stringify(manifest)));
    writeIndex(layout, [{ mediaType: manifest.mediaType, ...blob }]);
    const error = await rejection(resolveImage(layout));
    expect(error.code).toBe("ERR_IMAGE_BLOB_NOT_FOUND");
    expect(error.digest).toBe(sha256("absent"));
  });

  it("wrong config digest fails", async () => {
    const layout = buildLayout({ layers: [await layer()] });
    const image = await resolveImage(layout);
    writeFileSync(join(layout, "blobs/sha256", image.configDigest.slice(7)), JSON.stringify({ ...image.config, os: "plan9" }));
    const error = await rejection(resolveImage(layout));
    expect(error.code).toMatch(/^ERR_IMAGE_(DIGEST|SIZE)_MISMATCH$/);
    expect(error.digest).toBe(image.configDigest);
  });

  it("hostile layer paths stay inside", async () => {
    const hostile = rawTar([
      { name: "../../../../tmp/escaped", data: Buffer.from("x") },
      { name: "/etc/absolute", data: Buffer.from("y") },
      { name: "link", type: "2", linkname: "../../../.." },
      { name: "link/through-link", data: Buffer.from("z") },
    ]);
    const { target } = await unpack(`oci-layout:${buildLayout({ layers: [{ tar: hostile }] })}`);
    const listing = renderListTree(target);
    expect(listing).toContain("/tmp/escaped type=f");
    expect(listing).toContain("/etc/absolute type=f");
    expect(listing).toContain("/through-link type=f");
    expect(target.readdir("/").sort()).toEqual(["etc", "link", "through-link", "tmp"]);
  });

  it("layer stream verifies while streaming", async () => {
    const layout = buildLayout({ layers: [await layer({ diffId: sha256("x") })] });
    const image = await resolveImage(layout);
    const names: string[] = [];
    const run = async (): Promise<void> => {
      for await (const entry of readLayerEntries(image.layers[0]!)) names.push(entry.name);
    };
    await expect(run()).rejects.toMatchObject({ code: "ERR_IMAGE_DIGEST_MISMATCH" });
    expect(names).toEqual(["etc/", "etc/hostname", "big.bin"]);
  });
});

describe("early stop", () => {
  it("abandoned layer stream closes its file", async () => {
    // Large enough that backpressure stops the read before the file ends.
    const tar = await makeTar([{ name: "large.bin", content: Buffer.alloc(32 << 20, 1) }]);
    const layout = buildLayout({ layers: [{ tar, compression: "none" }] });
    const image = await resolveImage(layout);
    const blob = join(layout, "blobs/sha256", image.layers[0]!.digest!.slice(7));
    const openFiles = (): number => readdirSync("/proc/self/fd").filter((fd) => readlinkOrEmpty(`/proc/self/fd/${fd}`) === blob).length;

    for await (const _chunk of openLayer(image.layers[0]!)) {
      expect(openFiles()).toBe(1);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(openFiles()).toBe(0);
  });
});

function readlinkOrEmpty(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return "";
  }
}
