/**
 * Separates the two things that differ between the guest benchmark's
 * chain and flat modes: the ext4 layout each writer produces, and the
 * qcow2 chain that stores it.
 *
 *   node --import tsx bench/guest/compare-layout.ts [--rounds N]
 *
 * It boots three roots with the read workloads: the mke2fs image, a raw
 * export of layerdisk's debian-python chain (layerdisk's ext4 layout
 * without qcow2), and the chain itself. When the export runs as fast as
 * the mke2fs image, the chain's extra time comes from the qcow2 chain.
 * When it runs as slow as the chain, it comes from the layout. Prints a
 * markdown table of medians; nothing is written to docs/.
 */
import { mkdtemp, rm } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";

import { exportChain } from "../../src/chain/export.js";
import { chooseAccelerator } from "./accel.js";
import { addSamples, referenceImage, runFsbench } from "./bench.js";
import { cacheSubdir, testdataDir } from "./cache.js";
import { copyImage, referenceDisks } from "./disks.js";
import { fetchKernel } from "./kernel.js";
import { freshLayerdiskChain } from "./layerdisk-chain.js";
import { formatMs } from "./report/format.js";
import type { ModeResult } from "./results.js";
import { WORKLOAD_DESCRIPTIONS, type WorkloadName } from "./workloads/index.js";

const WORKLOADS: readonly WorkloadName[] = ["stat_usr", "read_stdlib", "read_stdlib_cold", "random_reads", "negative_lookups", "python_import_cold"];

const { values } = parseArgs({ options: { rounds: { type: "string", default: "2" } } });
const rounds = Number(values.rounds);
const kernel = await fetchKernel();
const accelerator = await chooseAccelerator(kernel);
const workDir = await mkdtemp(path.join(await cacheSubdir("bench"), "layout-"));
const log = (line: string): void => console.error(line);

try {
  const probe = await freshLayerdiskChain(referenceImage(), path.join(workDir, "probe.qcow2"));
  const exported = await exportChain(probe.disk, path.join(workDir, "export.raw"), { format: "raw" });
  await probe.release();
  const disks = await referenceDisks(path.join(testdataDir(), "debian-python.rootfs"), Math.ceil(probe.record.virtualSize / 2 ** 20));

  const freshCopy = async (source: string, name: string): Promise<{ disk: string }> => {
    const disk = path.join(workDir, name);
    await rm(disk, { force: true });
    await copyImage(source, disk);
    return { disk };
  };
  const freshChain = async (): Promise<{ disk: string; release: () => Promise<void> }> => {
    const fresh = await freshLayerdiskChain(referenceImage(), path.join(workDir, "overlay.qcow2"));
    return { disk: fresh.disk, release: fresh.release };
  };
  const roots: Array<{ label: string; prepare: () => Promise<{ disk: string; release?: () => Promise<void> }> }> = [
    { label: "mke2fs -d, raw", prepare: () => freshCopy(disks.raw, "flat.ext4") },
    { label: "layerdisk chain exported, raw", prepare: () => freshCopy(exported, "copy.raw") },
    { label: "layerdisk chain, qcow2", prepare: freshChain },
  ];
  const results = roots.map((root): ModeResult => ({ id: "qcow2-chain", label: root.label, root: root.label, bootMs: 0, bootSamplesMs: [], workloads: {} }));

  for (let round = 0; round < rounds; round += 1) {
    // Odd rounds run the roots in reverse order, so none always runs first.
    for (let step = 0; step < roots.length; step += 1) {
      const index = round % 2 === 0 ? step : roots.length - 1 - step;
      const root = roots[index]!;
      const prepared = await root.prepare();
      log(`layout: round ${round + 1}/${rounds}, ${root.label}, accelerator ${accelerator.accel}`);
      try {
        const { report, bootMs, stderr } = await runFsbench({ root: { disk: prepared.disk }, label: root.label, kernel, accel: accelerator.accel, workloads: WORKLOADS, repetitions: 3 });
        addSamples(results[index]!, report, bootMs);
        for (const line of stderr.trim().split("\n")) log(`  ${line}`);
      } finally {
        await prepared.release?.();
      }
    }
  }

  console.log(`| workload | ${results.map((result) => `${result.label} (ms)`).join(" | ")} |`);
  console.log(`| --- | ${results.map(() => "---:").join(" | ")} |`);
  for (const name of WORKLOADS) {
    console.log(`| ${WORKLOAD_DESCRIPTIONS[name]} | ${results.map((result) => formatMs(result.workloads[name]?.medianMs ?? NaN)).join(" | ")} |`);
  }
  console.log(JSON.stringify(results));
} finally {
  await rm(workDir, { recursive: true, force: true });
}
