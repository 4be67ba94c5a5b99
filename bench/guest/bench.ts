import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { chooseAccelerator } from "./accel.js";
import { bootGuest, type BootOptions } from "./boot.js";
import { cacheSubdir, testdataDir } from "./cache.js";
import { referenceDisks } from "./disks.js";
import { GuestError } from "./errors.js";
import { execTool } from "./exec.js";
import { fetchKernel, type GuestKernel } from "./kernel.js";
import { freshLayerdiskChain, type ChainRecord } from "./layerdisk-chain.js";
import { BENCH_MODES, type BenchInputs, type BenchMode } from "./modes.js";
import { QEMU_PATH, type Accelerator } from "./qemu.js";
import type { GuestBenchResult, ModeId, ModeResult, WorkloadResult } from "./results.js";
import { fsbenchScript, WORKLOAD_NAMES, type WorkloadName } from "./workloads/index.js";

export interface GuestBenchOptions {
  /** Fewer workloads and modes, for a run of a few minutes. */
  quick: boolean;
  /** Top of an existing qcow2 chain to measure instead of the chain createChain makes of the reference image. */
  chainTop?: string;
  /** Command line recorded with the results. */
  command: string;
  log: (line: string) => void;
}

const GUEST_CPUS = 2;
const GUEST_MEMORY_MIB = 1024;
const REFERENCE_IMAGE = "debian-python";

/** Returns the reference to the corpus image `name` as an OCI layout, for createChain. */
export function referenceImage(name: string = REFERENCE_IMAGE): string {
  return `oci-layout:${path.join(testdataDir(), name)}:latest`;
}

// The quick subset skips the slowest virtio-fs workloads to stay near two minutes.
const QUICK_WORKLOADS: readonly WorkloadName[] = ["stat_usr", "read_stdlib", "sequential_write_fsync", "python_import_cold"];
const QUICK_MODES: readonly ModeId[] = ["virtiofs-auto", "qcow2-chain", "raw-ext4"];

export async function describeMachine(): Promise<Omit<GuestBenchResult["machine"], "loadAverage">> {
  const { stdout: qemuVersion } = await execTool(QEMU_PATH, ["--version"]);
  return {
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    hostCpus: os.cpus().length,
    hostMemoryGiB: Math.round(os.totalmem() / 2 ** 30),
    hostKernel: os.release(),
    qemu: qemuVersion.split("\n")[0] ?? "",
  };
}

export interface FsbenchReport {
  python: string;
  workloads: Record<string, { samples_ms: number[]; median_ms: number; cache: "warm" | "cold"; disk_reads?: number[]; disk_read_kib?: number[] }>;
}

/** Parses fsbench.py's JSON output; `label` names the boot in the error. */
export function parseFsbench(stdout: string, label: string): FsbenchReport {
  try {
    return JSON.parse(stdout) as FsbenchReport;
  } catch (error) {
    throw new GuestError("ERR_GUEST_NO_RESULT", `fsbench.py in ${label} printed no valid JSON: ${stdout.slice(0, 200)}`, { cause: error });
  }
}

function toWorkloadResults(report: FsbenchReport): Partial<Record<WorkloadName, WorkloadResult>> {
  const results: Partial<Record<WorkloadName, WorkloadResult>> = {};
  for (const name of WORKLOAD_NAMES) {
    const entry = report.workloads[name];
    if (entry === undefined) continue;
    results[name] = {
      samplesMs: entry.samples_ms,
      medianMs: entry.median_ms,
      cache: entry.cache,
      ...(entry.disk_reads === undefined ? {} : { diskReads: entry.disk_reads }),
      ...(entry.disk_read_kib === undefined ? {} : { diskReadKiB: entry.disk_read_kib }),
    };
  }
  return results;
}

interface RunSettings {
  workloads: readonly WorkloadName[];
  repetitions: number;
  rounds: number;
  modes: readonly BenchMode[];
}

function settingsFor(quick: boolean): RunSettings {
  return {
    workloads: quick ? QUICK_WORKLOADS : WORKLOAD_NAMES,
    repetitions: 3,
    rounds: quick ? 1 : 2,
    modes: BENCH_MODES.filter((mode) => !quick || QUICK_MODES.includes(mode.id)),
  };
}

/** Returns `modes` rotated left by `round`, so no mode always runs first or last. */
function rotate<T>(modes: readonly T[], round: number): T[] {
  const shift = round % modes.length;
  return [...modes.slice(shift), ...modes.slice(0, shift)];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Adds one boot's report to the pooled samples of its mode. */
export function addSamples(target: ModeResult, report: FsbenchReport, bootMs: number): void {
  target.bootSamplesMs.push(bootMs);
  target.bootMs = median(target.bootSamplesMs);
  for (const [name, entry] of Object.entries(toWorkloadResults(report)) as Array<[WorkloadName, WorkloadResult]>) {
    const pooled = target.workloads[name] ?? { samplesMs: [], medianMs: 0, cache: entry.cache };
    pooled.samplesMs.push(...entry.samplesMs);
    if (entry.diskReads !== undefined) pooled.diskReads = [...(pooled.diskReads ?? []), ...entry.diskReads];
    if (entry.diskReadKiB !== undefined) pooled.diskReadKiB = [...(pooled.diskReadKiB ?? []), ...entry.diskReadKiB];
    pooled.medianMs = median(pooled.samplesMs);
    target.workloads[name] = pooled;
  }
}

/** One guest boot that runs fsbench.py. */
export interface FsbenchBoot {
  root: Pick<BootOptions, "disk" | "virtiofsDir" | "virtiofsCache">;
  label: string;
  kernel: GuestKernel;
  accel: Accelerator;
  workloads: readonly WorkloadName[];
  repetitions: number;
}

/** Boots one guest, runs the workloads in it and returns their report and the boot time. */
export async function runFsbench(boot: FsbenchBoot): Promise<{ report: FsbenchReport; bootMs: number; stderr: string }> {
  const command = `python3 /run/layerdisk/fsbench.py --repetitions ${boot.repetitions} --workloads ${boot.workloads.join(",")}`;
  const result = await bootGuest({
    ...boot.root,
    kernel: boot.kernel,
    accel: boot.accel,
    command,
    files: { "fsbench.py": await fsbenchScript() },
    timeoutMs: 20 * 60_000,
    cpus: GUEST_CPUS,
    memoryMiB: GUEST_MEMORY_MIB,
  });
  if (result.exitCode !== 0) {
    throw new GuestError("ERR_GUEST_NO_RESULT", `fsbench.py failed in ${boot.label} with exit status ${result.exitCode}: ${result.stderr.trim()}`);
  }
  return { report: parseFsbench(result.stdout, boot.label), bootMs: result.bootMs, stderr: result.stderr };
}

/** Guest size every benchmark boots with. */
export const GUEST_SHAPE = { cpus: GUEST_CPUS, memoryMiB: GUEST_MEMORY_MIB } as const;

/**
 * Returns the chain record and virtual size of the chain the benchmark will
 * boot. For the default chain this runs createChain once, so the layers are
 * converted (or found in the store) before any timing starts.
 */
async function resolveChain(options: GuestBenchOptions, workDir: string): Promise<{ chain: BenchInputs["chain"]; virtualSize: number }> {
  if (options.chainTop !== undefined) {
    const { stdout } = await execTool("qemu-img", ["info", "--output=json", "-U", options.chainTop]);
    return { chain: { top: options.chainTop }, virtualSize: (JSON.parse(stdout) as { "virtual-size": number })["virtual-size"] };
  }
  const reference = referenceImage();
  const started = Date.now();
  const fresh = await freshLayerdiskChain(reference, path.join(workDir, "probe.qcow2"));
  await fresh.release();
  options.log(`guest bench: createChain ${reference} gave ${fresh.record.files.length} layer files in ${Date.now() - started} ms`);
  return { chain: { reference }, virtualSize: fresh.record.virtualSize };
}

/**
 * Boots the reference image in each mode (virtio-fs with two cache
 * policies, a qcow2 chain and a flat raw image) and runs the same workloads
 * in each guest. One QEMU runs at a time. The full run boots every mode
 * twice, in rotated order, and pools the samples, because other jobs on a
 * shared host slow down whichever guest happens to run at that moment.
 */
export async function runGuestBenchmark(options: GuestBenchOptions): Promise<GuestBenchResult> {
  const started = new Date();
  const loadAtStart = os.loadavg()[0] ?? 0;
  const kernel = await fetchKernel();
  const accelerator = await chooseAccelerator(kernel);
  const sourceDir = path.join(testdataDir(), `${REFERENCE_IMAGE}.rootfs`);
  const workDir = await mkdtemp(path.join(await cacheSubdir("bench"), "run-"));

  const settings = settingsFor(options.quick);
  const results = new Map<ModeId, ModeResult>();
  let python = "";
  let chainRecord: ChainRecord | undefined;
  let imageSizeMiB = 0;
  try {
    const { chain, virtualSize } = await resolveChain(options, workDir);
    // The flat image gets the chain's filesystem size, so both roots have
    // the same ext4 geometry and differ only in how the blocks are stored.
    imageSizeMiB = Math.ceil(virtualSize / 2 ** 20);
    options.log(`guest bench: preparing a ${imageSizeMiB} MiB flat image of ${sourceDir}`);
    const disks = await referenceDisks(sourceDir, imageSizeMiB);

    // virtio-fs workloads write into the shared tree, so they get a private copy.
    const virtiofsDir = path.join(workDir, "tree");
    await execTool("cp", ["-a", sourceDir, virtiofsDir]);
    const inputs: BenchInputs = { virtiofsDir, rawImage: disks.raw, chain, workDir };

    for (let round = 0; round < settings.rounds; round += 1) {
      for (const mode of rotate(settings.modes, round)) {
        const prepared = await mode.prepare(inputs);
        chainRecord = prepared.chain ?? chainRecord;
        options.log(`guest bench: round ${round + 1}/${settings.rounds}, ${mode.label} (${prepared.description}), accelerator ${accelerator.accel}`);
        try {
          const { report, bootMs, stderr } = await runFsbench({
            root: prepared.root,
            label: `mode ${mode.id}`,
            kernel,
            accel: accelerator.accel,
            workloads: settings.workloads,
            repetitions: settings.repetitions,
          });
          python = report.python;
          const target = results.get(mode.id) ?? { id: mode.id, label: mode.label, root: prepared.description, bootMs: 0, bootSamplesMs: [], workloads: {} };
          addSamples(target, report, bootMs);
          results.set(mode.id, target);
          for (const line of stderr.trim().split("\n")) options.log(`  ${line}`);
        } finally {
          await prepared.release?.();
        }
      }
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }

  return {
    suite: "guest",
    date: started.toISOString(),
    quick: options.quick,
    repetitions: settings.repetitions,
    rounds: settings.rounds,
    command: options.command,
    machine: { ...(await describeMachine()), loadAverage: { start: loadAtStart, end: os.loadavg()[0] ?? 0 } },
    accelerator,
    guest: { kernelPackage: kernel.packageName, python, cpus: GUEST_CPUS, memoryMiB: GUEST_MEMORY_MIB },
    image: `${REFERENCE_IMAGE} test image (Debian bookworm minbase + python3), ${imageSizeMiB} MiB ext4 (the size createChain gives the chain)`,
    ...(chainRecord === undefined ? {} : { chain: chainRecord }),
    modes: settings.modes.flatMap((mode) => results.get(mode.id) ?? []),
  };
}

/** Reads a stored result, for re-rendering docs without re-running guests. */
export async function readGuestBenchResult(file: string): Promise<GuestBenchResult> {
  return JSON.parse(await readFile(file, "utf8")) as GuestBenchResult;
}
