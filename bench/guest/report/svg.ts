import type { GuestBenchResult, ModeId } from "../results.js";
import { WORKLOAD_DESCRIPTIONS } from "../workloads/index.js";
import { formatMs, measuredWorkloads, medianOf } from "./format.js";

const MODE_COLORS: Readonly<Record<ModeId, string>> = {
  "virtiofs-auto": "#d95f02",
  "virtiofs-always": "#e6ab02",
  "qcow2-chain": "#1b9e77",
  "raw-ext4": "#7570b3",
};

const WIDTH = 1040;
const LABEL_WIDTH = 400;
const RIGHT_MARGIN = 70;
const BAR_HEIGHT = 11;
const GROUP_GAP = 12;
const TOP = 60;
const FONT = "font-family=\"sans-serif\" font-size=\"11\"";

function tickLabel(value: number): string {
  return value >= 1000 ? `${value / 1000} s` : `${value} ms`;
}

function escapeXml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");
}

/** Returns the decade bounds that enclose every value, for a log-scale axis. */
function decadeRange(values: readonly number[]): { low: number; high: number } {
  const positive = values.filter((value) => value > 0);
  const low = Math.floor(Math.log10(Math.min(...positive)));
  const high = Math.ceil(Math.log10(Math.max(...positive)));
  return { low, high: high > low ? high : low + 1 };
}

/**
 * Renders the medians as a horizontal grouped bar chart on a log scale,
 * because the modes differ by up to two orders of magnitude.
 */
export function renderChart(result: GuestBenchResult): string {
  const workloads = measuredWorkloads(result);
  const values = workloads.flatMap((name) => result.modes.map((mode) => medianOf(mode, name) ?? 0));
  const { low, high } = decadeRange(values);
  const plotWidth = WIDTH - LABEL_WIDTH - RIGHT_MARGIN;
  const xOf = (value: number): number => LABEL_WIDTH + ((Math.log10(value) - low) / (high - low)) * plotWidth;
  const groupHeight = result.modes.length * BAR_HEIGHT + GROUP_GAP;
  const height = TOP + workloads.length * groupHeight + 30;
  const parts: string[] = [];

  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">`);
  parts.push(`<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="10" y="18" font-family="sans-serif" font-size="14" font-weight="bold">Guest file-system workloads, median ms (log scale, shorter is faster), ${escapeXml(result.accelerator.accel.toUpperCase())}</text>`);

  result.modes.forEach((mode, index) => {
    const x = 10 + index * 220;
    parts.push(`<rect x="${x}" y="30" width="12" height="12" fill="${MODE_COLORS[mode.id]}"/>`);
    parts.push(`<text x="${x + 16}" y="40" ${FONT}>${escapeXml(mode.label)}</text>`);
  });

  const axisBottom = TOP + workloads.length * groupHeight;
  for (let exponent = low; exponent <= high; exponent += 1) {
    const x = xOf(10 ** exponent).toFixed(1);
    parts.push(`<line x1="${x}" y1="${TOP - 6}" x2="${x}" y2="${axisBottom}" stroke="#cccccc"/>`);
    parts.push(`<text x="${x}" y="${axisBottom + 14}" ${FONT} text-anchor="middle">${tickLabel(10 ** exponent)}</text>`);
  }

  workloads.forEach((name, groupIndex) => {
    const groupTop = TOP + groupIndex * groupHeight;
    const labelY = groupTop + (result.modes.length * BAR_HEIGHT) / 2 + 4;
    parts.push(`<text x="${LABEL_WIDTH - 8}" y="${labelY}" ${FONT} text-anchor="end">${escapeXml(WORKLOAD_DESCRIPTIONS[name])}</text>`);
    result.modes.forEach((mode, modeIndex) => {
      const median = medianOf(mode, name);
      if (median === undefined || median <= 0) return;
      const y = groupTop + modeIndex * BAR_HEIGHT;
      const barEnd = Math.max(xOf(median), LABEL_WIDTH + 1);
      parts.push(`<rect x="${LABEL_WIDTH}" y="${y}" width="${(barEnd - LABEL_WIDTH).toFixed(1)}" height="${BAR_HEIGHT - 2}" fill="${MODE_COLORS[mode.id]}"/>`);
      parts.push(`<text x="${(barEnd + 4).toFixed(1)}" y="${y + BAR_HEIGHT - 3}" font-family="sans-serif" font-size="9">${formatMs(median)}</text>`);
    });
  });

  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}
