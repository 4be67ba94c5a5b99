/**
 * qcow2 benchmark: our engine against QEMU on the same files.
 *
 *   npx tsx bench/qcow2/run.ts [--quick] [--write-docs]
 *
 * Measures, in one run, so the ratios compare like with like:
 * - sequential write: copying a raw file of non-zero data into a new qcow2,
 *   once with `Qcow2Chain.importRaw` (the file is read in the native core)
 *   and once through `Qcow2Chain.write` (4 MiB calls from JavaScript),
 *   against `qemu-img convert -t writeback -O qcow2`. All three flush at the end.
 * - scattered 4 KiB reads through chains of depth 1, 10 and 50, both as one
 *   native loop (`benchmarkReads`) and as one awaited `Qcow2Chain.read` per
 *   block, against `qemu-img bench -d 1 -t writeback`. qemu-img
 *   bench has no random mode, so both read offset (i * step) mod size with a
 *   step of 7919 blocks, which visits every block in a scattered order.
 * - creating an empty overlay on a 50-deep chain with `createImage`.
 *
 * With --write-docs, the results replace the qcow2 section of
 * docs/benchmarks.md. Nothing here asserts on timings.
 */

import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

import { Qcow2Chain, createImage } from "../../src/index.js";
import { benchmarkReads } from "../../src/qcow2/index.js";

const MiB = 1024 * 1024;
const quick = process.argv.includes("--quick");
const writeDocs = process.argv.includes("--write-docs");

const WRITE_BYTES = (quick ? 64 : 256) * MiB;
const WRITE_CHUNK = 4 * MiB;
const READ_DISK_BYTES = 64 * MiB;
const READ_COUNT = quick ? 5_000 : 20_000;
const READ_STEP_BLOCKS = 7919;
const OVERLAY_RUNS = quick ? 30 : 100;
const REPEATS = quick ? 1 : 7;
const loadAtStart = loadavg()
  .map((value) => value.toFixed(2))
  .join(", ");

/** A median and the best of several runs of one measurement, in its unit (higher is better). */
interface Rate {
  median: number;
  best: number;
}

function rate(values: number[]): Rate {
  return { median: median(values), best: Math.max(...values) };
}

function cell(value: Rate): string {
  return `${value.median.toFixed(0)} (best ${value.best.toFixed(0)})`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function run(program: string, args: string[]): string {
  return execFileSync(program, args, { encoding: "utf8" });
}

/** Fills `buffer` with non-zero pseudo-random bytes (xorshift32). */
function fillNonZero(buffer: Buffer, seed: number): void {
  let state = seed | 1;
  for (let i = 0; i < buffer.length; i += 4) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    buffer.writeUInt32LE((state | 0x01010101) >>> 0, i);
  }
}

/**
 * Copies `raw` into a new qcow2 image in 4 MiB writes. The next chunk is
 * read while the previous write runs on the thread pool, as
 * `qemu-img convert` also overlaps reading its input with writing.
 */
async function oursSequentialWrite(raw: string, output: string): Promise<number> {
  const chunks = [Buffer.alloc(WRITE_CHUNK), Buffer.alloc(WRITE_CHUNK)];
  const fd = openSync(raw, "r");
  const start = performance.now();
  await createImage(output, { virtualSize: WRITE_BYTES });
  const chain = await Qcow2Chain.open(output, { writable: true });
  let pending: Promise<void> = Promise.resolve();
  for (let offset = 0, index = 0; offset < WRITE_BYTES; offset += WRITE_CHUNK, index ^= 1) {
    const chunk = chunks[index] as Buffer;
    readSync(fd, chunk, 0, WRITE_CHUNK, offset);
    await pending;
    pending = chain.write(offset, chunk);
  }
  await pending;
  await chain.close();
  const seconds = (performance.now() - start) / 1000;
  closeSync(fd);
  return seconds;
}

/** Copies `raw` into a new qcow2 image with `importRaw`, which reads the file in the native core. */
async function oursImport(raw: string, output: string): Promise<number> {
  const start = performance.now();
  await createImage(output, { virtualSize: WRITE_BYTES });
  const chain = await Qcow2Chain.open(output, { writable: true });
  await chain.importRaw(raw);
  await chain.close();
  return (performance.now() - start) / 1000;
}

function qemuSequentialWrite(raw: string, output: string): number {
  const start = performance.now();
  run("qemu-img", ["convert", "-t", "writeback", "-f", "raw", "-O", "qcow2", raw, output]);
  return (performance.now() - start) / 1000;
}

async function benchSequentialWrite(dir: string): Promise<{ ours: Rate; imported: Rate; qemu: Rate }> {
  const raw = join(dir, "input.raw");
  const data = Buffer.alloc(WRITE_BYTES);
  fillNonZero(data, 12345);
  writeFileSync(raw, data);
  readFileSync(raw); // warm the page cache for both sides

  const ours: number[] = [];
  const imported: number[] = [];
  const qemu: number[] = [];
  // Each side starts without an output file, so none pays for truncating
  // the previous run's output. The order rotates, so no side always runs
  // right after another one's writes.
  const sides: Array<() => Promise<void>> = [
    async () => {
      rmSync(join(dir, "ours.qcow2"), { force: true });
      ours.push(await oursSequentialWrite(raw, join(dir, "ours.qcow2")));
    },
    async () => {
      rmSync(join(dir, "imported.qcow2"), { force: true });
      imported.push(await oursImport(raw, join(dir, "imported.qcow2")));
    },
    async () => {
      rmSync(join(dir, "qemu.qcow2"), { force: true });
      qemu.push(qemuSequentialWrite(raw, join(dir, "qemu.qcow2")));
    },
  ];
  for (let i = 0; i < REPEATS; i++) {
    for (let j = 0; j < sides.length; j++) {
      await (sides[(i + j) % sides.length] as () => Promise<void>)();
    }
  }
  run("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", join(dir, "ours.qcow2"), raw]);
  run("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", join(dir, "imported.qcow2"), raw]);
  rmSync(raw);
  const throughput = (seconds: number[]): Rate => rate(seconds.map((value) => WRITE_BYTES / MiB / value));
  return { ours: throughput(ours), imported: throughput(imported), qemu: throughput(qemu) };
}

/**
 * Builds a chain of `depth` images: a base full of data, and upper layers
 * that each overwrite 1% of the 64 KiB clusters.
 */
async function buildChain(dir: string, depth: number): Promise<string> {
  const base = join(dir, `d${depth}-0.qcow2`);
  await createImage(base, { virtualSize: READ_DISK_BYTES });
  let chain = await Qcow2Chain.open(base, { writable: true });
  const chunk = Buffer.alloc(4 * MiB);
  for (let offset = 0; offset < READ_DISK_BYTES; offset += chunk.length) {
    fillNonZero(chunk, offset + 1);
    await chain.write(offset, chunk);
  }
  await chain.close();

  let top = base;
  const clusters = READ_DISK_BYTES / 65536;
  const cluster = Buffer.alloc(65536);
  for (let layer = 1; layer < depth; layer++) {
    const path = join(dir, `d${depth}-${layer}.qcow2`);
    chain = await Qcow2Chain.createOverlay(path, top);
    for (let i = 0; i < clusters / 100; i++) {
      fillNonZero(cluster, layer * 1000 + i);
      await chain.write(((layer * 7 + i * 101) % clusters) * 65536, cluster);
    }
    await chain.close();
    top = path;
  }
  return top;
}

async function oursScatteredReads(top: string): Promise<number> {
  const chain = await Qcow2Chain.open(top);
  const blocks = READ_DISK_BYTES / 4096;
  const start = performance.now();
  for (let i = 0; i < READ_COUNT; i++) {
    await chain.read(((i * READ_STEP_BLOCKS) % blocks) * 4096, 4096);
  }
  const seconds = (performance.now() - start) / 1000;
  await chain.close();
  return READ_COUNT / seconds;
}

/** Runs the same read loop inside the native core, without a Node-API call per read. */
async function nativeScatteredReads(top: string): Promise<number> {
  const chain = await Qcow2Chain.open(top);
  const seconds = await benchmarkReads(chain, READ_COUNT, 4096, READ_STEP_BLOCKS * 4096);
  await chain.close();
  return READ_COUNT / seconds;
}

function qemuScatteredReads(top: string): number {
  const args = ["bench", "-f", "qcow2", "-t", "writeback", "-d", "1", "-c", String(READ_COUNT)];
  args.push("-s", "4096", "-S", String(READ_STEP_BLOCKS * 4096), top);
  const output = run("qemu-img", args);
  const seconds = Number(/Run completed in ([\d.]+) seconds/.exec(output)?.[1]);
  return READ_COUNT / seconds;
}

interface ReadResult {
  depth: number;
  /** Reads per second through `Qcow2Chain.read`, one awaited call per read. */
  ours: Rate;
  /** Reads per second of the same loop inside the native core. */
  native: Rate;
  qemu: Rate;
}

async function benchReads(dir: string): Promise<ReadResult[]> {
  const results = [];
  for (const depth of [1, 10, 50]) {
    const top = await buildChain(dir, depth);
    const ours: number[] = [];
    const nativeLoop: number[] = [];
    const qemu: number[] = [];
    for (let i = 0; i < REPEATS; i++) {
      ours.push(await oursScatteredReads(top));
      nativeLoop.push(await nativeScatteredReads(top));
      qemu.push(qemuScatteredReads(top));
    }
    results.push({ depth, ours: rate(ours), native: rate(nativeLoop), qemu: rate(qemu) });
  }
  return results;
}

async function benchOverlayCreate(dir: string): Promise<number> {
  const top = join(dir, "d50-49.qcow2");
  const times: number[] = [];
  for (let i = 0; i < OVERLAY_RUNS; i++) {
    const path = join(dir, `overlay-${i}.qcow2`);
    const start = performance.now();
    await createImage(path, { backing: { path: top, format: "qcow2" } });
    times.push(performance.now() - start);
    rmSync(path);
  }
  return median(times);
}

/** Formats the ratio of medians, then the ratio of bests. */
function ratio(ours: Rate, qemu: Rate): string {
  return `${(ours.median / qemu.median).toFixed(2)} (best ${(ours.best / qemu.best).toFixed(2)})`;
}

function formatReport(
  write: { ours: Rate; imported: Rate; qemu: Rate },
  reads: ReadResult[],
  overlayMs: number,
): string {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, Node ${process.version}, ${run("qemu-img", ["--version"]).split("\n")[0]}`;
  const lines = [
    "## qcow2",
    "",
    `Machine: ${machine}; files under ${tmpdir()}. Load average at the start: ${loadAtStart}. The machine was shared with other jobs, so single runs vary by a factor of two or more; compare medians, and bests as the least disturbed runs.`,
    "",
    `Command: \`npx tsx bench/qcow2/run.ts${quick ? " --quick" : ""} --write-docs\` (medians of ${REPEATS} runs).`,
    "",
    "| measurement | layerdisk, median (best) | QEMU, median (best) | ratio of medians (of bests) |",
    "| --- | --- | --- | --- |",
    `| sequential write of ${WRITE_BYTES / MiB} MiB, \`importRaw\`, MiB/s (QEMU: \`qemu-img convert -t writeback -O qcow2\`) | ${cell(write.imported)} | ${cell(write.qemu)} | ${ratio(write.imported, write.qemu)} |`,
    `| sequential write of ${WRITE_BYTES / MiB} MiB, 4 MiB \`write\` calls from JavaScript, MiB/s (same QEMU runs) | ${cell(write.ours)} | ${cell(write.qemu)} | ${ratio(write.ours, write.qemu)} |`,
  ];
  for (const read of reads) {
    lines.push(
      `| scattered 4 KiB reads, chain depth ${read.depth}, native loop, reads/s (QEMU: \`qemu-img bench -d 1\`) | ${cell(read.native)} | ${cell(read.qemu)} | ${ratio(read.native, read.qemu)} |`,
    );
    lines.push(
      `| scattered 4 KiB reads, chain depth ${read.depth}, one \`read\` call each, reads/s (same QEMU runs) | ${cell(read.ours)} | ${cell(read.qemu)} | ${ratio(read.ours, read.qemu)} |`,
    );
  }
  lines.push(`| create an empty overlay on a 50-deep chain, median ms | ${overlayMs.toFixed(2)} | | |`);
  lines.push("");
  lines.push(
    "The native loop runs the read pattern of `qemu-img bench` inside the Rust core (`benchmarkReads`), as `qemu-img bench` runs it inside QEMU. The `read` rows await one 4 KiB `Qcow2Chain.read` at a time, so each read also pays a Node-API call and a thread-pool hop. Both sides keep one request in flight.",
  );
  return lines.join("\n") + "\n";
}

function writeSection(section: string): void {
  const path = join(import.meta.dirname ?? ".", "..", "..", "docs", "benchmarks.md");
  let text = "# Benchmarks\n\n";
  try {
    text = readFileSync(path, "utf8");
  } catch {
    // The file does not exist yet.
  }
  const start = text.indexOf("## qcow2");
  if (start === -1) {
    text = text.trimEnd() + "\n\n" + section;
  } else {
    const next = text.indexOf("\n## ", start + 1);
    text = text.slice(0, start) + section + (next === -1 ? "" : text.slice(next + 1));
  }
  writeFileSync(path, text);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "layerdisk-qcow2-bench-"));
  try {
    const write = await benchSequentialWrite(dir);
    const reads = await benchReads(dir);
    const overlayMs = await benchOverlayCreate(dir);
    const report = formatReport(write, reads, overlayMs);
    process.stdout.write(report);
    if (writeDocs) writeSection(report);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
