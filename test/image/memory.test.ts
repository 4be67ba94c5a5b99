import { createHash } from "node:crypto";
import { closeSync, createReadStream, mkdirSync, openSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";

import { describe, expect, it } from "vitest";

import { readLayerEntries } from "../../src/image/layer-stream.js";
import { resolveImage } from "../../src/image/resolve.js";
import { ustarHeader } from "../tar/raw-tar.js";
import { tempDir, writeBlob, writeIndex } from "./builder.js";

const FILE_SIZE = 512 * 1024 * 1024;

async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return "sha256:" + hash.digest("hex");
}

/**
 * Builds a layout with one uncompressed layer holding a 512 MiB file. The
 * blob is a sparse file on disk (header, then zeros), so it costs no space.
 */
async function bigLayerLayout(): Promise<string> {
  const layout = join(tempDir(), "big");
  mkdirSync(join(layout, "blobs", "sha256"), { recursive: true });
  const staging = join(layout, "layer.tar");
  const fd = openSync(staging, "w");
  writeSync(fd, ustarHeader({ name: "big.bin" }, FILE_SIZE), 0, 512, 0);
  // Two zero blocks end the archive; the file data before them is zeros too.
  writeSync(fd, Buffer.alloc(1), 0, 1, 512 + FILE_SIZE + 1024 - 1);
  closeSync(fd);

  const digest = await sha256File(staging);
  const size = 512 + FILE_SIZE + 1024;
  renameSync(staging, join(layout, "blobs", "sha256", digest.slice(7)));
  const config = writeBlob(layout, Buffer.from(JSON.stringify({ os: "linux", architecture: "amd64", rootfs: { type: "layers", diff_ids: [digest] } })));
  const manifest = writeBlob(
    layout,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", digest, size }],
      }),
    ),
  );
  writeIndex(layout, [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest }]);
  return layout;
}

describe("streaming memory", () => {
  it("512 MiB layer streams in bounded memory", async () => {
    const image = await resolveImage(await bigLayerLayout());
    const before = process.memoryUsage().rss;
    let peak = before;
    let bytes = 0;
    for await (const entry of readLayerEntries(image.layers[0]!)) {
      for await (const chunk of entry.data()) {
        bytes += chunk.data.length;
        peak = Math.max(peak, process.memoryUsage().rss);
      }
    }
    expect(bytes).toBe(FILE_SIZE);
    // The whole layer is 512 MiB; streaming keeps far less than that alive.
    expect(peak - before).toBeLessThan(128 * 1024 * 1024);
  });
});
