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
import { BENCH_MODES } from "./modes.js";
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

async function describeMachine(): Promise<GuestBenchResult["machine"]> {
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

/**
 * Boots the reference image once per mode (virtio-fs with two cache
 * policies, a qcow2 chain and a flat raw image) and runs the same
 * workloads in each guest. One QEMU runs at a time.
 */
export async function runGuestBenchmark(options: GuestBenchOptions): Promise<GuestBenchResult> {
  const started = new Date();
  const kernel = await fetchKernel();
  const accelerator = await chooseAccelerator(kernel);
  const sourceDir = path.join(testdataDir(), `${REFERENCE_IMAGE}.rootfs`);
  options.log(`guest bench: preparing images of ${sourceDir}`);
  const disks = await referenceDisks(sourceDir, IMAGE_SIZE_MIB);
  const workDir = await mkdtemp(path.join(await cacheSubdir("bench"), "run-"));

  const workloads = options.quick ? QUICK_WORKLOADS : WORKLOAD_NAMES;
  const repetitions = options.quick ? 3 : 5;
  const modes = BENCH_MODES.filter((mode) => !options.quick || QUICK_MODES.includes(mode.id));
  const script = await fsbenchScript();
  const results: ModeResult[] = [];
  let python = "";
  try {
    // virtio-fs workloads write into the shared tree, so they get a private copy.
    const virtiofsDir = path.join(workDir, "tree");
    await execTool("cp", ["-a", sourceDir, virtiofsDir]);
    const inputs = { virtiofsDir, rawImage: disks.raw, chainTop: options.chainTop ?? disks.qcow2, workDir };

    for (const mode of modes) {
      const { root, description } = await mode.prepare(inputs);
      options.log(`guest bench: ${mode.label} (${description}), accelerator ${accelerator.accel}`);
      const boot = await bootGuest({
        ...root,
        kernel,
        accel: accelerator.accel,
        command: `python3 /run/layerdisk/fsbench.py --repetitions ${repetitions} --workloads ${workloads.join(",")}`,
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
      results.push({ id: mode.id, label: mode.label, root: description, bootMs: boot.bootMs, workloads: toWorkloadResults(report) });
      for (const line of boot.stderr.trim().split("\n")) options.log(`  ${line}`);
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }

  return {
    suite: "guest",
    date: started.toISOString(),
    quick: options.quick,
    repetitions,
    command: options.command,
    machine: await describeMachine(),
    accelerator,
    guest: { kernelPackage: kernel.packageName, python, cpus: GUEST_CPUS, memoryMiB: GUEST_MEMORY_MIB },
    image: `${REFERENCE_IMAGE} test image (Debian bookworm minbase + python3), ${IMAGE_SIZE_MIB} MiB ext4`,
    modes: results,
  };
}

/** Reads a stored result, for re-rendering docs without re-running guests. */
export async function readGuestBenchResult(file: string): Promise<GuestBenchResult> {
  return JSON.parse(await readFile(file, "utf8")) as GuestBenchResult;
}
