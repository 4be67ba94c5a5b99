import type { ChainRecord } from "../layerdisk-chain.js";
import type { GuestBenchResult, ModeResult } from "../results.js";
import { WORKLOAD_DESCRIPTIONS, WORKLOAD_NAMES } from "../workloads/index.js";
import { findMode, formatMs, formatRatio, measuredWorkloads, ratio, statisticOf, type Statistic } from "./format.js";

function tableRow(cells: readonly string[]): string {
  return `| ${cells.join(" | ")} |`;
}

/**
 * Renders one table of `statistic` per workload: one column per mode, then
 * virtio-fs auto ÷ chain and chain ÷ raw. The median table also gets a
 * boot-time row.
 */
export function renderTable(result: GuestBenchResult, statistic: Statistic = "median"): string {
  const chain = findMode(result, "qcow2-chain");
  const virtiofs = findMode(result, "virtiofs-auto");
  const raw = findMode(result, "raw-ext4");
  const header = ["workload", "cache", ...result.modes.map((mode) => `${mode.label} (ms)`), "virtio-fs auto ÷ chain", "chain ÷ raw"];
  const lines = [tableRow(header), tableRow(header.map((_, index) => (index < 2 ? "---" : "---:")))];

  for (const name of measuredWorkloads(result)) {
    const cache = result.modes.map((mode) => mode.workloads[name]?.cache).find((value) => value !== undefined) ?? "";
    const values = result.modes.map((mode) => {
      const value = statisticOf(statistic, mode, name);
      return value === undefined ? "–" : formatMs(value);
    });
    const speedup = ratio(statisticOf(statistic, virtiofs, name), statisticOf(statistic, chain, name));
    const overhead = ratio(statisticOf(statistic, chain, name), statisticOf(statistic, raw, name));
    lines.push(tableRow([WORKLOAD_DESCRIPTIONS[name], cache, ...values, formatRatio(speedup), formatRatio(overhead)]));
  }
  if (statistic !== "median") return lines.join("\n");

  const boots = result.modes.map((mode) => formatMs(mode.bootMs));
  const bootSpeedup = ratio(virtiofs?.bootMs, chain?.bootMs);
  const bootOverhead = ratio(chain?.bootMs, raw?.bootMs);
  lines.push(tableRow([`boot to first command (host clock, median of ${result.rounds})`, "", ...boots, formatRatio(bootSpeedup), formatRatio(bootOverhead)]));
  return lines.join("\n");
}

function renderChain(chain: ChainRecord): string {
  const source = chain.reference === "file" ? "an existing chain passed with --chain-top" : `\`createChain("${chain.reference}")\``;
  const depth = chain.maxDepth === undefined ? "" : ` with maxDepth ${chain.maxDepth}`;
  const ids = chain.chainIds.map((id) => `\`${id.replace(/^sha256:/, "").slice(0, 12)}\``).join(", ");
  const allocated = (chain.allocatedBytes / 2 ** 20).toFixed(1);
  return `- Chain: ${source}${depth}, ${chain.files.length} layer files (${allocated} MiB allocated) plus a fresh overlay per boot, so the VMM opens ${chain.fileCount} files${ids === "" ? "" : `; layer chain IDs ${ids}`}.`;
}

/**
 * Renders the median read requests and KiB each block-device mode read
 * from /dev/vda per timed run, or an empty string when no mode recorded
 * them. A warm workload that reads nothing ran from the guest page cache.
 */
export function renderDiskReads(allModes: readonly ModeResult[]): string {
  const modes = allModes.filter((mode) => Object.values(mode.workloads).some((workload) => workload?.diskReads !== undefined));
  if (modes.length === 0) return "";
  const header = ["workload", "cache", ...modes.flatMap((mode) => [`${mode.label}: reads`, `${mode.label}: KiB`])];
  const lines = [tableRow(header), tableRow(header.map((_, index) => (index < 2 ? "---" : "---:")))];
  for (const name of WORKLOAD_NAMES.filter((workload) => modes.some((mode) => mode.workloads[workload] !== undefined))) {
    const cache = modes.map((mode) => mode.workloads[name]?.cache).find((value) => value !== undefined) ?? "";
    const cells = modes.flatMap((mode) => {
      const workload = mode.workloads[name];
      if (workload?.diskReads === undefined || workload.diskReadKiB === undefined) return ["–", "–"];
      return [String(medianOf(workload.diskReads)), String(medianOf(workload.diskReadKiB))];
    });
    lines.push(tableRow([WORKLOAD_DESCRIPTIONS[name], cache, ...cells]));
  }
  return lines.join("\n");
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Renders the conditions of the run: command, machine, accelerator and guest. */
export function renderConditions(result: GuestBenchResult): string {
  const { machine, guest, accelerator } = result;
  return [
    `- Command: \`${result.command}\`${result.quick ? " (quick subset)" : ""}, run ${result.date}.`,
    `- Host: ${machine.cpuModel}, ${machine.hostCpus} CPUs shared with other jobs (1-minute load average ${machine.loadAverage.start.toFixed(1)} at the start, ${machine.loadAverage.end.toFixed(1)} at the end), ${machine.hostMemoryGiB} GiB RAM, Linux ${machine.hostKernel}, ${machine.qemu}.`,
    `- Accelerator: ${accelerator.accel.toUpperCase()} (${accelerator.reason}).`,
    `- Guest: ${guest.kernelPackage}, ${guest.cpus} vCPUs, ${guest.memoryMiB} MiB, Python ${guest.python}.`,
    `- Image: ${result.image}.`,
    ...(result.chain === undefined ? [] : [renderChain(result.chain)]),
    `- Method: each mode boots ${result.rounds === 1 ? "once" : `${result.rounds} times, in rotated order`}, and each boot runs every workload. A warm workload runs once untimed, then ${result.repetitions} timed runs. The tables show the median and the fastest of all ${result.rounds * result.repetitions} samples per workload.`,
  ].join("\n");
}
