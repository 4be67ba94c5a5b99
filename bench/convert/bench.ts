/**
 * Conversion benchmark: times createChain on each test image into a fresh
 * store, against the umoci + mke2fs + qemu-img pipeline and against
 * decompression and tar parsing alone. Every contender runs in its own
 * process, and the contenders of one round run back to back in a rotating
 * order, so that load on a shared machine hits all of them alike.
 */
import { execFile } from "node:child_process";
import { createReadStream, existsSync } from "node:fs";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";

import { resolveImage } from "../../src/image/resolve.js";
import { DEFAULT_FS_SIZE } from "../../src/store/parameters.js";
import { runBaseline, type BaselineRun } from "./baseline.js";
import { ensureLargeLayer } from "./large-layer.js";

const run = promisify(execFile);

const TESTDATA = process.env.LAYERDISK_TESTDATA ?? "/var/cache/layerdisk-testdata";
/** Scratch space for stores and baseline trees; everything under it is removed after each run. */
const SCRATCH = process.env.LAYERDISK_BENCH_SCRATCH ?? path.join(os.tmpdir(), "layerdisk-convert-bench");
const FULL_IMAGES = ["debian-minbase", "debian-python", "debian-python-zstd", "edge"];
const QUICK_IMAGES = ["debian-minbase"];
const FULL_RUNS = 3;
const QUICK_RUNS = 1;
/** The large layer takes about a minute per round, so the full run measures it once. */
const LARGE_LAYER_RUNS = 1;
/**
 * `umoci unpack` writes edge's 5 GiB sparse file out in full, and mke2fs
 * then reads it all back: about 50 s per round on a 2-CPU machine. Its
 * baseline runs once, to keep the suite within its time budget.
 */
const BASELINE_ROUNDS: Record<string, number> = { edge: 1 };

/** Event-loop delay in ms beyond the 1 ms sampling interval. */
export interface DelayStats {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}

/** Output of bench/convert/measure.mjs for one run. */
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

export interface ContenderSamples<T> {
  samples: T[];
  /** Reason the contender did not run, when it did not. */
  skipped?: string;
}

export interface ImageResult {
  name: string;
  layout: string;
  layers: number;
  compressedBytes: number;
  uncompressedBytes: number;
  chain: ContenderSamples<MeasureOutput>;
  baseline: ContenderSamples<BaselineRun>;
  limit: ContenderSamples<MeasureOutput>;
}

export interface ConvertBenchResult {
  suite: "convert";
  date: string;
  command: string;
  quick: boolean;
  cache: string;
  host: {
    cpus: number;
    cpuModel: string;
    memoryGiB: number;
    kernel: string;
    loadAverageBefore: number[];
    loadAverageAfter: number[];
  };
  versions: Record<string, string>;
  fsSizeBytes: number;
  images: ImageResult[];
}

export interface ConvertBenchOptions {
  quick: boolean;
  command: string;
  log: (line: string) => void;
  repoRoot: string;
}

async function firstLine(file: string, args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run(file, args);
    return (stdout.trim() === "" ? stderr : stdout).trim().split("\n")[0] ?? "";
  } catch (error) {
    return `not available (${error instanceof Error ? error.message.split("\n")[0] : String(error)})`;
  }
}

async function toolVersions(): Promise<Record<string, string>> {
  return {
    node: process.version,
    qemuImg: await firstLine("qemu-img", ["--version"]),
    e2fsprogs: await firstLine("mke2fs", ["-V"]),
    umoci: await firstLine("umoci", ["--version"]),
  };
}

/** Reads every blob of a layout once, so that all contenders start from a warm page cache. */
async function warmBlobs(layout: string): Promise<void> {
  const blobsDir = path.join(layout, "blobs", "sha256");
  for (const name of await readdir(blobsDir)) {
    // Streamed and dropped, so a large blob never sits in this process's memory.
    for await (const _chunk of createReadStream(path.join(blobsDir, name)));
  }
}

async function measureInChild(repoRoot: string, args: string[]): Promise<MeasureOutput> {
  const { stdout } = await run(process.execPath, ["bench/convert/measure.mjs", ...args], {
    cwd: repoRoot,
    maxBuffer: 16 << 20,
  });
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as MeasureOutput;
}

async function runChain(repoRoot: string, reference: string, round: number): Promise<MeasureOutput> {
  const store = path.join(SCRATCH, `store-${round}`);
  await rm(store, { recursive: true, force: true });
  try {
    return await measureInChild(repoRoot, ["chain", reference, store]);
  } finally {
    await rm(store, { recursive: true, force: true });
  }
}

async function measureImage(
  name: string,
  layout: string,
  runs: number,
  options: ConvertBenchOptions,
): Promise<ImageResult> {
  const reference = `oci-layout:${layout}:latest`;
  const image = await resolveImage(reference);
  const compressedBytes = image.layers.reduce((sum, layer) => sum + layer.size, 0);
  await warmBlobs(layout);

  const result: ImageResult = {
    name,
    layout,
    layers: image.layers.length,
    compressedBytes,
    uncompressedBytes: 0,
    chain: { samples: [] },
    baseline: { samples: [] },
    limit: { samples: [] },
  };

  const contenders: Record<"chain" | "baseline" | "limit", (round: number) => Promise<void>> = {
    chain: async (round) => {
      result.chain.samples.push(await runChain(options.repoRoot, reference, round));
    },
    limit: async () => {
      const output = await measureInChild(options.repoRoot, ["limit", reference]);
      result.uncompressedBytes = output.uncompressedBytes ?? 0;
      result.limit.samples.push(output);
    },
    baseline: async (round) => {
      if (result.baseline.skipped !== undefined) return;
      if (result.baseline.samples.length >= (BASELINE_ROUNDS[name] ?? runs)) return;
      try {
        result.baseline.samples.push(await runBaseline(layout, "latest", path.join(SCRATCH, `baseline-${round}`), DEFAULT_FS_SIZE));
      } catch (error) {
        // umoci 0.4.7 rejects zstd layers; the reason goes into the record instead of a number.
        const stderr = (error as { stderr?: string }).stderr?.trim();
        result.baseline.skipped = stderr || (error instanceof Error ? error.message : String(error));
      }
    },
  };
  const order = ["chain", "baseline", "limit"] as const;
  for (let round = 0; round < runs; round++) {
    for (let i = 0; i < order.length; i++) {
      const contender = order[(round + i) % order.length]!;
      options.log(`convert bench: ${name} round ${round + 1}/${runs}: ${contender}`);
      await contenders[contender](round);
    }
  }
  return result;
}

/** Newest modification time of the `.ts` files under `dir`, in ms since 1970. */
async function newestSourceTime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    newest = Math.max(newest, (await stat(path.join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}

/**
 * Fails when dist/ is missing and warns when src/ changed after the last
 * build, because measure.mjs times the built package.
 */
async function checkBuild(repoRoot: string, log: (line: string) => void): Promise<void> {
  const built = path.join(repoRoot, "dist", "index.js");
  if (!existsSync(built)) throw new Error(`${built} not found; run npm run build before the conversion benchmark`);
  if ((await newestSourceTime(path.join(repoRoot, "src"))) > (await stat(built)).mtimeMs) {
    log("convert bench: warning: src/ is newer than dist/index.js, so this run measures an older build; run npm run build first");
  }
}

export async function runConvertBenchmark(options: ConvertBenchOptions): Promise<ConvertBenchResult> {
  await checkBuild(options.repoRoot, options.log);
  const loadAverageBefore = os.loadavg();
  const runs = options.quick ? QUICK_RUNS : FULL_RUNS;
  await mkdir(SCRATCH, { recursive: true });

  const images: ImageResult[] = [];
  for (const name of options.quick ? QUICK_IMAGES : FULL_IMAGES) {
    const layout = path.join(TESTDATA, name);
    if (!existsSync(path.join(layout, "index.json"))) {
      throw new Error(`test image ${name} is missing: ${layout}/index.json not found; set LAYERDISK_TESTDATA to the folder that contains the test images`);
    }
    images.push(await measureImage(name, layout, runs, options));
  }
  if (!options.quick) {
    const layout = await ensureLargeLayer(options.log);
    images.push(await measureImage("large-layer (generated)", layout, LARGE_LAYER_RUNS, options));
  }
  await rm(SCRATCH, { recursive: true, force: true });

  const cpuModel = os.cpus()[0]?.model ?? "unknown";
  return {
    suite: "convert",
    date: new Date().toISOString(),
    command: options.command,
    quick: options.quick,
    cache: "warm: each layout's blobs are read once before its first run; the page cache is not dropped",
    host: {
      cpus: os.cpus().length,
      cpuModel,
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
      loadAverageBefore,
      loadAverageAfter: os.loadavg(),
    },
    versions: await toolVersions(),
    fsSizeBytes: DEFAULT_FS_SIZE,
    images,
  };
}
