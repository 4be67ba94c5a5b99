import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { chooseAccelerator, type AcceleratorChoice } from "../guest/accel.js";
import { addSamples, describeMachine, GUEST_SHAPE, runFsbench } from "../guest/bench.js";
import { cacheSubdir, testdataDir } from "../guest/cache.js";
import { fetchKernel } from "../guest/kernel.js";
import { freshLayerdiskChain, type ChainRecord } from "../guest/layerdisk-chain.js";
import type { GuestBenchResult, ModeResult } from "../guest/results.js";
import type { WorkloadName } from "../guest/workloads/index.js";
import { depthImage } from "./images.js";

/** One chain shape to boot: `depth` image layers, optionally merged down by maxDepth. */
export interface DepthCase {
  depth: number;
  maxDepth?: number;
}

/** Chains of growing depth, and the deepest one again with the files merged to 10 and to a single layer file. */
const FULL_CASES: readonly DepthCase[] = [
  { depth: 1 },
  { depth: 5 },
  { depth: 10 },
  { depth: 30 },
  { depth: 30, maxDepth: 10 },
  { depth: 30, maxDepth: 2 },
];
const QUICK_CASES: readonly DepthCase[] = [{ depth: 5 }];

/** Read workloads; the cold ones are where the guest misses its page cache and reads go through the chain. */
const FULL_WORKLOADS: readonly WorkloadName[] = ["stat_usr", "read_stdlib", "read_stdlib_cold", "random_reads", "negative_lookups", "python_import_cold"];
const QUICK_WORKLOADS: readonly WorkloadName[] = ["read_stdlib_cold"];

export interface DepthCaseResult extends DepthCase {
  label: string;
  chain: ChainRecord;
  /** Milliseconds createChain took on the first call of the run, with every layer already in the store unless it was the first run. */
  createChainMs: number;
  result: ModeResult;
}

export interface DepthBenchResult {
  suite: "depth";
  date: string;
  quick: boolean;
  command: string;
  repetitions: number;
  rounds: number;
  machine: GuestBenchResult["machine"];
  accelerator: AcceleratorChoice;
  guest: GuestBenchResult["guest"];
  source: string;
  cases: DepthCaseResult[];
}

function caseLabel(entry: DepthCase): string {
  return entry.maxDepth === undefined ? `depth ${entry.depth}` : `depth ${entry.depth}, maxDepth ${entry.maxDepth}`;
}

/**
 * Boots debian-python split into chains of several depths and runs the
 * read workloads in each. The layer images are built once and cached, and
 * createChain caches their layer files in the benchmark store. Each boot
 * gets a fresh overlay from createChain. Full runs boot every case twice,
 * the second round in reverse order.
 */
export async function runDepthBenchmark(options: { quick: boolean; command: string; log: (line: string) => void }): Promise<DepthBenchResult> {
  const started = new Date();
  const loadAtStart = os.loadavg()[0] ?? 0;
  const kernel = await fetchKernel();
  const accelerator = await chooseAccelerator(kernel);
  const rootfs = path.join(testdataDir(), "debian-python.rootfs");
  const cases = options.quick ? QUICK_CASES : FULL_CASES;
  const workloads = options.quick ? QUICK_WORKLOADS : FULL_WORKLOADS;
  const rounds = options.quick ? 1 : 2;
  const repetitions = 3;
  const workDir = await mkdtemp(path.join(await cacheSubdir("bench"), "depth-"));

  const results = new Map<string, DepthCaseResult>();
  let python = "";
  try {
    for (const entry of cases) {
      const label = caseLabel(entry);
      const layout = await depthImage(rootfs, entry.depth);
      const startedChain = Date.now();
      const fresh = await freshLayerdiskChain(`oci-layout:${layout}:latest`, path.join(workDir, "probe.qcow2"), { maxDepth: entry.maxDepth });
      const createChainMs = Date.now() - startedChain;
      await fresh.release();
      options.log(`depth bench: ${label}: ${fresh.record.files.length} files under the overlay, createChain ${createChainMs} ms`);
      results.set(label, {
        ...entry,
        label,
        chain: fresh.record,
        createChainMs,
        result: { id: "qcow2-chain", label, root: layout, bootMs: 0, bootSamplesMs: [], workloads: {} },
      });
    }

    for (let round = 0; round < rounds; round += 1) {
      const order = round % 2 === 0 ? cases : [...cases].reverse();
      for (const entry of order) {
        const target = results.get(caseLabel(entry))!;
        const fresh = await freshLayerdiskChain(target.chain.reference, path.join(workDir, "overlay.qcow2"), { maxDepth: entry.maxDepth });
        options.log(`depth bench: round ${round + 1}/${rounds}, ${target.label}, accelerator ${accelerator.accel}`);
        try {
          const { report, bootMs, stderr } = await runFsbench({
            root: { disk: fresh.disk },
            label: target.label,
            kernel,
            accel: accelerator.accel,
            workloads,
            repetitions,
          });
          python = report.python;
          addSamples(target.result, report, bootMs);
          for (const line of stderr.trim().split("\n")) options.log(`  ${line}`);
        } finally {
          await fresh.release();
        }
      }
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }

  return {
    suite: "depth",
    date: started.toISOString(),
    quick: options.quick,
    command: options.command,
    repetitions,
    rounds,
    machine: { ...(await describeMachine()), loadAverage: { start: loadAtStart, end: os.loadavg()[0] ?? 0 } },
    accelerator,
    guest: { kernelPackage: kernel.packageName, python, ...GUEST_SHAPE },
    source: rootfs,
    cases: cases.map((entry) => results.get(caseLabel(entry))!),
  };
}
