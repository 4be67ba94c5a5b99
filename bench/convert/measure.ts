/**
 * One timed run of one contender, in a process of its own so that its peak
 * RSS (VmHWM) covers this run only. The conversion worker threads live in
 * the same process, so VmHWM includes them.
 *
 *   node --import tsx bench/convert/measure.ts chain REF STORE_DIR
 *   node --import tsx bench/convert/measure.ts limit REF
 *
 * `chain` runs createChain into STORE_DIR, which should be empty. `limit`
 * reads every layer of REF, decompresses it, checks both digests and parses
 * the tar, reading every entry's data, with no filesystem target: the work
 * createChain cannot avoid. Prints one JSON object (a `MeasureOutput`) on
 * stdout.
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay, performance, type IntervalHistogram } from "node:perf_hooks";
import { Transform } from "node:stream";

import { createChain } from "../../src/chain/create.js";
import { openLayer } from "../../src/image/layer-stream.js";
import { resolveImage } from "../../src/image/resolve.js";
import { readTar } from "../../src/tar/reader.js";

/** Sampling interval of the event-loop delay histogram, in ms (its minimum). */
const DELAY_RESOLUTION_MS = 1;
/** How long the idle loop is sampled before a conversion, as a reference for machine noise. */
const IDLE_SAMPLE_MS = 500;

/** Event-loop delay in ms beyond the sampling interval. */
export interface DelayStats {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

export interface MeasureOutput {
  mode: "chain" | "limit";
  seconds: number;
  /** VmHWM at the end of the run, in MiB: the process's peak RSS, worker threads included. */
  peakRssMiB: number;
  /** VmHWM after imports and before the timed work, in MiB. */
  startRssMiB: number;
  /** limit mode: uncompressed tar bytes of all layers. */
  uncompressedBytes?: number;
  /** chain mode: event-loop delay while createChain runs. */
  eventLoopDelay?: DelayStats;
  /** chain mode: event-loop delay of the idle process just before. */
  idleEventLoopDelay?: DelayStats;
}

function peakRssMiB(): number {
  const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
  if (match === null) throw new Error("VmHWM is missing from /proc/self/status; this benchmark needs Linux");
  return Number(match[1]) / 1024;
}

/** Histogram values are whole intervals between timer callbacks, so the interval itself is subtracted. */
function delayStats(histogram: IntervalHistogram): DelayStats {
  const excess = (nanoseconds: number): number => Math.max(0, nanoseconds / 1e6 - DELAY_RESOLUTION_MS);
  return {
    p50: excess(histogram.percentile(50)),
    p99: excess(histogram.percentile(99)),
    max: excess(histogram.max),
    samples: histogram.count,
  };
}

async function sampleIdleDelay(): Promise<DelayStats> {
  const histogram = monitorEventLoopDelay({ resolution: DELAY_RESOLUTION_MS });
  histogram.enable();
  await new Promise((resolve) => setTimeout(resolve, IDLE_SAMPLE_MS));
  histogram.disable();
  return delayStats(histogram);
}

async function measureChain(reference: string, storeDir: string): Promise<MeasureOutput> {
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

async function measureLimit(reference: string): Promise<MeasureOutput> {
  const startRssMiB = peakRssMiB();
  const start = performance.now();
  const image = await resolveImage(reference);
  let uncompressedBytes = 0;
  for (const layer of image.layers) {
    // The conversion worker passes the tar through a byte-counting Transform too.
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
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

async function main(): Promise<void> {
  const [mode, reference, storeDir] = process.argv.slice(2);
  let output: MeasureOutput;
  if (mode === "chain" && reference !== undefined && storeDir !== undefined) output = await measureChain(reference, storeDir);
  else if (mode === "limit" && reference !== undefined) output = await measureLimit(reference);
  else throw new Error("usage: measure.ts chain REF STORE_DIR | measure.ts limit REF");
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

await main();
