/**
 * One timed run of one contender, in a process of its own so that its peak
 * RSS (VmHWM) covers this run only. The conversion worker threads live in
 * the same process, so VmHWM includes them.
 *
 *   node bench/convert/measure.mjs chain REF STORE_DIR
 *   node bench/convert/measure.mjs limit REF
 *
 * `chain` runs createChain into STORE_DIR, which should be empty. `limit`
 * reads every layer of REF, decompresses it, checks both digests and parses
 * the tar, reading every entry's data, with no filesystem target: the work
 * createChain cannot avoid. Prints one JSON object (`MeasureOutput` in
 * bench.ts) on stdout.
 *
 * Both modes load the built package from dist/ (`npm run build`), as users
 * do. This file is plain JavaScript so that Node runs it without tsx:
 * worker threads inherit the process's `--import` flags, and with tsx each
 * conversion worker took about 0.2 s more to start on a 2-CPU machine.
 */
import { existsSync, readFileSync } from "node:fs";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { Transform } from "node:stream";

/** Loads a module of the built package. */
async function loadBuilt(relative) {
  const url = new URL(`../../dist/${relative}`, import.meta.url);
  if (!existsSync(url)) throw new Error(`${url.pathname} is missing; run npm run build first`);
  return import(url.href);
}

/** Sampling interval of the event-loop delay histogram, in ms (its minimum). */
const DELAY_RESOLUTION_MS = 1;
/** How long the idle loop is sampled before a conversion, as a reference for machine noise. */
const IDLE_SAMPLE_MS = 500;

function peakRssMiB() {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
  if (match === null) throw new Error("VmHWM is missing from /proc/self/status; this benchmark needs Linux");
  return Number(match[1]) / 1024;
}

/** Histogram values are whole intervals between timer callbacks, so the interval itself is subtracted. */
function delayStats(histogram) {
  const excess = (nanoseconds) => Math.max(0, nanoseconds / 1e6 - DELAY_RESOLUTION_MS);
  return {
    p50: excess(histogram.percentile(50)),
    p99: excess(histogram.percentile(99)),
    max: excess(histogram.max),
    samples: histogram.count,
  };
}

async function sampleIdleDelay() {
  const histogram = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
  histogram.enable();
  await new Promise((resolve) => setTimeout(resolve, IDLE_SAMPLE_MS));
  histogram.disable();
  return delayStats(histogram);
}

async function measureChain(reference, storeDir) {
  const { createChain } = await loadBuilt("index.js");
  const idleEventLoopDelay = await sampleIdleDelay();
  const startRssMiB = peakRssMiB();
  const histogram = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
  histogram.enable();
  const start = performance.now();
  await createChain(reference, { store: storeDir });
  const seconds = (performance.now() - start) / 1000;
  histogram.disable();
  return { mode: "chain", seconds, peakRssMiB: peakRssMiB(), startRssMiB, eventLoopDelay: delayStats(histogram), idleEventLoopDelay };
}

async function measureLimit(reference) {
  const { openLayer } = await loadBuilt("image/layer-stream.js");
  const { resolveImage } = await loadBuilt("image/resolve.js");
  const { readTar } = await loadBuilt("tar/reader.js");
  const startRssMiB = peakRssMiB();
  const start = performance.now();
  const image = await resolveImage(reference);
  let uncompressedBytes = 0;
  for (const layer of image.layers) {
    // The conversion worker passes the tar through a byte-counting Transform too.
    const counter = new Transform({
      transform(chunk, _encoding, callback) {
        uncompressedBytes += chunk.length;
        callback(null, chunk);
      },
    });
    const tar = openLayer(layer);
    tar.on("error", (error) => counter.destroy(error));
    for await (const entry of readTar(tar.pipe(counter), { file: layer.location.file })) {
      for await (const _chunk of entry.data());
    }
  }
  const seconds = (performance.now() - start) / 1000;
  return { mode: "limit", seconds, peakRssMiB: peakRssMiB(), startRssMiB, uncompressedBytes };
}

async function main() {
  const [mode, reference, storeDir] = process.argv.slice(2);
  let output;
  if (mode === "chain" && reference !== undefined && storeDir !== undefined) output = await measureChain(reference, storeDir);
  else if (mode === "limit" && reference !== undefined) output = await measureLimit(reference);
  else throw new Error("usage: measure.mjs chain REF STORE_DIR | measure.mjs limit REF");
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

await main();
