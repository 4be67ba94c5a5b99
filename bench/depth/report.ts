import { formatMs, formatRatio, minimumOf, ratio } from "../guest/report/format.js";
import { renderDiskReads } from "../guest/report/markdown.js";
import type { GeneratedSection } from "../guest/report/section.js";
import { WORKLOAD_NAMES, WORKLOAD_DESCRIPTIONS } from "../guest/workloads/index.js";
import type { DepthBenchResult } from "./bench.js";

const INTRO = `## Chain depth

The \`debian-python\` reference tree is split into OCI images of 1, 5, 10
and 30 uncompressed tar layers (\`bench/depth/images.ts\`). Files go to
the layers in turn (file i to layer i mod N, in sorted path order), so file
data is spread over every layer and a read can land at any depth; each
layer also carries the parent directories of its files. createChain
converts each image in the benchmark store, and the 30-layer image is
also booted with \`maxDepth\` 10 (the bottom 8 layer files and one file
merging the top 22 layers) and \`maxDepth\` 2 (all 30 layers merged into
one file). Each
boot gets a fresh overlay and runs the read workloads of the guest
benchmark. "Files" counts what the VMM opens, the overlay included.`;

function tableRow(cells: readonly string[]): string {
  return `| ${cells.join(" | ")} |`;
}

/** Renders the depth benchmark's tables: median ms per workload and case, and each case against depth 1. */
export function renderDepthTable(result: DepthBenchResult): string {
  const workloads = WORKLOAD_NAMES.filter((name) => result.cases.some((entry) => entry.result.workloads[name] !== undefined));
  const baseline = result.cases.find((entry) => entry.depth === 1 && entry.maxDepth === undefined);
  const header = ["chain", "files", "layer files (MiB)", ...workloads.map((name) => `${WORKLOAD_DESCRIPTIONS[name]} (ms)`), "boot (ms)"];
  const lines = [tableRow(header), tableRow(header.map((_, index) => (index === 0 ? "---" : "---:")))];
  for (const entry of result.cases) {
    const cells = workloads.map((name) => {
      const workload = entry.result.workloads[name];
      if (workload === undefined) return "–";
      const relative = baseline === undefined || baseline === entry ? "" : ` (${formatRatio(ratio(workload.medianMs, baseline.result.workloads[name]?.medianMs))})`;
      return `${formatMs(workload.medianMs)}${relative}`;
    });
    lines.push(tableRow([entry.label, String(entry.chain.fileCount), (entry.chain.allocatedBytes / 2 ** 20).toFixed(0), ...cells, formatMs(entry.result.bootMs)]));
  }
  return lines.join("\n");
}

function renderMinimumTable(result: DepthBenchResult): string {
  const workloads = WORKLOAD_NAMES.filter((name) => result.cases.some((entry) => entry.result.workloads[name] !== undefined));
  const header = ["chain", ...workloads.map((name) => `${WORKLOAD_DESCRIPTIONS[name]} (ms)`)];
  const lines = [tableRow(header), tableRow(header.map((_, index) => (index === 0 ? "---" : "---:")))];
  for (const entry of result.cases) {
    lines.push(tableRow([entry.label, ...workloads.map((name) => {
      const value = minimumOf(entry.result, name);
      return value === undefined ? "–" : formatMs(value);
    })]));
  }
  return lines.join("\n");
}

function diskReadsBlock(result: DepthBenchResult): string[] {
  const table = renderDiskReads(result.cases.map((entry) => entry.result));
  if (table === "") return [];
  return ["Reads that reached the guest's /dev/vda per timed run (median), from /sys/block/vda/stat:", "", table, ""];
}

/** Returns the generated docs section for a depth run. */
export function depthSection(result: DepthBenchResult): GeneratedSection {
  const { machine, accelerator, guest } = result;
  const body = [
    `- Command: \`${result.command}\`, run ${result.date}.`,
    `- Host: ${machine.cpuModel}, ${machine.hostCpus} CPUs shared with other jobs (1-minute load average ${machine.loadAverage.start.toFixed(1)} at the start, ${machine.loadAverage.end.toFixed(1)} at the end), ${machine.hostMemoryGiB} GiB RAM, Linux ${machine.hostKernel}, ${machine.qemu}.`,
    `- Accelerator: ${accelerator.accel.toUpperCase()} (${accelerator.reason}).`,
    `- Guest: ${guest.kernelPackage}, ${guest.cpus} vCPUs, ${guest.memoryMiB} MiB, Python ${guest.python}.`,
    `- Method: each chain boots ${result.rounds === 1 ? "once" : `${result.rounds} times (the second round in reverse order)`}; a warm workload runs once untimed, then ${result.repetitions} timed runs, and a cold one drops the guest caches before each run. The first table shows the median of all ${result.rounds * result.repetitions} samples and, in brackets, the ratio to depth 1; the second the fastest sample.`,
    "",
    renderDepthTable(result),
    "",
    "Fastest sample:",
    "",
    renderMinimumTable(result),
    "",
    ...diskReadsBlock(result),
    "Raw samples: [benchmarks/depth.json](benchmarks/depth.json).",
  ].join("\n");
  return { name: "depth-bench", intro: INTRO, body };
}
