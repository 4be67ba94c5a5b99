import type { GuestBenchResult, ModeId, ModeResult } from "../results.js";
import { WORKLOAD_NAMES, type WorkloadName } from "../workloads/index.js";

/** Formats milliseconds with about three significant digits. */
export function formatMs(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Formats a ratio such as 12.3×. */
export function formatRatio(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return "–";
  return `${value >= 10 ? value.toFixed(0) : value.toFixed(2)}×`;
}

export function findMode(result: GuestBenchResult, id: ModeId): ModeResult | undefined {
  return result.modes.find((mode) => mode.id === id);
}

export function medianOf(mode: ModeResult | undefined, workload: WorkloadName): number | undefined {
  return mode?.workloads[workload]?.medianMs;
}

/** Returns the fastest sample of a workload, or undefined when it was not measured. */
export function minimumOf(mode: ModeResult | undefined, workload: WorkloadName): number | undefined {
  const samples = mode?.workloads[workload]?.samplesMs;
  return samples === undefined || samples.length === 0 ? undefined : Math.min(...samples);
}

/** Statistic a table reports per workload and mode. */
export type Statistic = "median" | "minimum";

export function statisticOf(statistic: Statistic, mode: ModeResult | undefined, workload: WorkloadName): number | undefined {
  return statistic === "median" ? medianOf(mode, workload) : minimumOf(mode, workload);
}

/** Workloads measured in at least one mode, in fsbench.py order. */
export function measuredWorkloads(result: GuestBenchResult): WorkloadName[] {
  return WORKLOAD_NAMES.filter((name) => result.modes.some((mode) => mode.workloads[name] !== undefined));
}

/** Returns numerator / denominator, or undefined when either is missing. */
export function ratio(numerator: number | undefined, denominator: number | undefined): number | undefined {
  if (numerator === undefined || denominator === undefined || denominator === 0) return undefined;
  return numerator / denominator;
}
