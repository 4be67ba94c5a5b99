/**
 * Measures decompression and tar parsing throughput on the debian-python
 * layers, gzip and zstd, with no filesystem target.
 *
 *   node --import tsx bench/layer/throughput.ts [--repeat N]
 *
 * Reads images from LAYERDISK_TESTDATA (default /var/cache/layerdisk-testdata).
 * Prints one Markdown table row per layer and mode; throughput is
 * uncompressed bytes per second, in MB/s (10^6 bytes).
 */
import { join } from "node:path";
import { performance } from "node:perf_hooks";

import { openLayer } from "../../src/image/layer-stream.js";
import { resolveImage } from "../../src/image/resolve.js";
import type { ResolvedLayer } from "../../src/image/types.js";
import { readTar } from "../../src/tar/reader.js";

const testdata = process.env.LAYERDISK_TESTDATA ?? "/var/cache/layerdisk-testdata";
const repeatIndex = process.argv.indexOf("--repeat");
const repeat = repeatIndex === -1 ? 1 : Number(process.argv[repeatIndex + 1]);

/** Decompresses and verifies a layer, counting uncompressed bytes. */
async function decompressOnly(layer: ResolvedLayer): Promise<number> {
  let bytes = 0;
  for await (const chunk of openLayer(layer)) bytes += (chunk as Buffer).length;
  return bytes;
}

/** Decompresses, verifies and parses a layer, reading every entry's data. */
async function decompressAndParse(layer: ResolvedLayer): Promise<number> {
  let entries = 0;
  for await (const entry of readTar(openLayer(layer))) {
    entries += 1;
    for await (const _chunk of entry.data());
  }
  return entries;
}

async function measure(name: string, layer: ResolvedLayer, uncompressed: number): Promise<void> {
  for (const [mode, run] of [
    ["decompress+verify", decompressOnly],
    ["decompress+verify+tar", decompressAndParse],
  ] as const) {
    let best = Infinity;
    for (let i = 0; i < repeat; i++) {
      const start = performance.now();
      await run(layer);
      best = Math.min(best, (performance.now() - start) / 1000);
    }
    const mbps = uncompressed / 1e6 / best;
    const row = [name, layer.index, layer.compression, mode, (layer.size / 1e6).toFixed(1), (uncompressed / 1e6).toFixed(1), best.toFixed(2), mbps.toFixed(0)];
    process.stdout.write(`| ${row.join(" | ")} |\n`);
  }
}

async function main(): Promise<void> {
  process.stdout.write("| image | layer | compression | mode | compressed MB | uncompressed MB | seconds (best) | MB/s |\n");
  process.stdout.write("|---|---|---|---|---|---|---|---|\n");
  for (const name of ["debian-python", "debian-python-zstd"]) {
    const image = await resolveImage(`oci-layout:${join(testdata, name)}`);
    for (const layer of image.layers) {
      const uncompressed = await decompressOnly(layer);
      await measure(name, layer, uncompressed);
    }
  }
  const peak = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`\nPeak RSS: ${peak.toFixed(0)} MiB\n`);
}

await main();
