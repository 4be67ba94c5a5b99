import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { chooseAccelerator } from "./accel.js";
import { bootGuest } from "./boot.js";
import { cacheSubdir, testdataDir } from "./cache.js";
import { referenceDisks } from "./disks.js";
import { GuestError } from "./errors.js";
import { execTool } from "./exec.js";
import { fetchKernel } from "./kernel.js";
import { BENCH_MODES, type BenchMode } from "./modes.js";
import { QEMU_PATH } from "./qemu.js";
import type { GuestBenchResult, ModeId, ModeResult, WorkloadResult } from "./results.js";
import { fsbenchScript, WORKLOAD_NAMES, type WorkloadName } from "./workloads/index.js";

export interface GuestBenchOptions {
  /** Fewer workloads and modes, for a run of a few minutes. */
  quick: boolean;
  /** Top of the qcow2 chain to measure; default: the reference image converted with qemu-img. */
  chainTop?: string;
  /** Command line recorded with the results. */
  command: string;
  log: (line: string) => void;
}

const GUEST_CPUS = 2;
const GUEST_MEMORY_MIB = 1024;
const REFERENCE_IMAGE = "debian-python";
/** Size of the raw image; room for the 16 MiB and 6.4 MiB write workloads and their journal. */
const IMAGE_SIZE_MIB = 1024;

// The quick subset skips the slowest virtio-fs workloads to stay near two minutes.
const QUICK_WORKLOADS: readonly WorkloadName[] = ["stat_usr", "read_stdlib", "sequential_write_fsync", "python_import_cold"];
const QUICK_MODES: readonly ModeId[] = ["virtiofs-auto", "qcow2-chain", "raw-ext4"];

async function describeMachine(): Promise<Omit<GuestBenchResult["machine"], "loadAverage">> {
  const { stdout: qemuVersion } = await execTool(QEMU_PATH, ["--version"]);
  return {
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    hostCpus: os.cpus().length,
    hostMemoryGiB: Math.round(os.totalmem() / 2 ** 30),
    hostKernel: os.release(),
    qemu: qemuVersion.split("\n")[0] ?? "",
  };
}

interface FsbenchReport {
  python: string;
  workloads: Record<string, { samples_ms: number[]; median_ms: number; cache: "warm" | "cold" }>;
}

function parseFsbench(stdout: string, modeId: string): FsbenchReport {
  try {
    return JSON.parse(stdout) as FsbenchReport;
  } catch (error) {
    throw new GuestError("ERR_GUEST_NO_RESULT", `fsbench.py in mode ${modeId} printed no valid JSON: ${stdout.slice(0, 200)}`, { cause: error });
  }
}

function toWorkloadResults(report: FsbenchReport): Partial<Record<WorkloadName, WorkloadResult>> {
  const results: Partial<Record<WorkloadName, WorkloadResult>> = {};
  for (const name of WORKLOAD_NAMES) {
    const entry = report.workloads[name];
    if (entry !== undefined) results[name] = { samplesMs: entry.samples_ms, medianMs: entry.median_ms, cache: entry.cache };
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

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Adds one boot's report to the pooled samples of its mode. */
function addSamples(target: ModeResult, report: FsbenchReport, bootMs: number): void {
  target.bootSamplesMs.push(bootMs);
  target.bootMs = median(target.bootSamplesMs);
  for (const [name, entry] of Object.entries(toWorkloadResults(report)) as Array<[WorkloadName, WorkloadResult]>) {
    const pooled = target.workloads[name] ?? { samplesMs: [], medianMs: 0, cache: entry.cache };
    pooled.samplesMs.push(...entry.samplesMs);
    pooled.medianMs = median(pooled.samplesMs);
    target.workloads[name] = pooled;
  }
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
  options.log(`guest bench: preparing images of ${sourceDir}`);
  const disks = await referenceDisks(sourceDir, IMAGE_SIZE_MIB);
  const workDir = await mkdtemp(path.join(await cacheSubdir("bench"), "run-"));

  const settings = settingsFor(options.quick);
  const script = await fsbenchScript();
  const command = `python3 /run/layerdisk/fsbench.py --repetitions ${settings.repetitions} --workloads ${settings.workloads.join(",")}`;
  const results = new Map<ModeId, ModeResult>();
  let python = "";
  try {
    // virtio-fs workloads write into the shared tree, so they get a private copy.
    const virtiofsDir = path.join(workDir, "tree");
    await execTool("cp", ["-a", sourceDir, virtiofsDir]);
    const inputs = { virtiofsDir, rawImage: disks.raw, chainTop: options.chainTop ?? disks.qcow2, workDir };

    for (let round = 0; round < settings.rounds; round += 1) {
      for (const mode of rotate(settings.modes, round)) {
        const { root, description } = await mode.prepare(inputs);
        options.log(`guest bench: round ${round + 1}/${settings.rounds}, ${mode.label} (${description}), accelerator ${accelerator.accel}`);
        const boot = await bootGuest({
          ...root,
          kernel,
          accel: accelerator.accel,
          command,
          files: { "fsbench.py": script },
          timeoutMs: 20 * 60_000,
          cpus: GUEST_CPUS,
          memoryMiB: GUEST_MEMORY_MIB,
        });
        if (boot.exitCode !== 0) {
          throw new GuestError("ERR_GUEST_NO_RESULT", `fsbench.py failed in mode ${mode.id} with exit status ${boot.exitCode}: ${boot.stderr.trim()}`);
        }
        const report = parseFsbench(boot.stdout, mode.id);
        python = report.python;
        const target = results.get(mode.id) ?? { id: mode.id, label: mode.label, root: description, bootMs: 0, bootSamplesMs: [], workloads: {} };
        addSamples(target, report, boot.bootMs);
        results.set(mode.id, target);
        for (const line of boot.stderr.trim().split("\n")) options.log(`  ${line}`);
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
    image: `${REFERENCE_IMAGE} test image (Debian bookworm minbase + python3), ${IMAGE_SIZE_MIB} MiB ext4`,
    modes: settings.modes.flatMap((mode) => results.get(mode.id) ?? []),
  };
}

/** Reads a stored result, for re-rendering docs without re-running guests. */
export async function readGuestBenchResult(file: string): Promise<GuestBenchResult> {
  return JSON.parse(await readFile(file, "utf8")) as GuestBenchResult;
}
