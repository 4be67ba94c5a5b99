/**
 * Progress output for long commands: a redrawn bar per layer on a terminal,
 * one plain line per event otherwise (logs, CI, pipes).
 */

import type { WriteStream } from "node:tty";

export interface LayerProgress {
  index: number;
  count: number;
  chainId: string;
  state: "cached" | "waiting" | "converting" | "done";
  /** Uncompressed tar bytes applied so far, when known. */
  bytesDone?: number;
  bytesTotal?: number;
}

const BAR_WIDTH = 28;

function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, "").slice(0, 12);
}

function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function describe(progress: LayerProgress): string {
  const head = `layer ${progress.index + 1}/${progress.count} ${shortDigest(progress.chainId)}`;
  const bytes =
    !progress.bytesDone
      ? ""
      : ` ${formatBytes(progress.bytesDone)}${progress.bytesTotal ? ` of ${formatBytes(progress.bytesTotal)}` : ""}`;
  return `${head} ${progress.state}${bytes}`;
}

export interface ProgressRenderer {
  update(progress: LayerProgress): void;
  finish(): void;
}

/** Plain lines, printed when a layer changes state, not for every byte. */
export function lineRenderer(output: NodeJS.WritableStream): ProgressRenderer {
  const lastState = new Map<number, string>();
  return {
    update(progress) {
      if (lastState.get(progress.index) === progress.state) return;
      lastState.set(progress.index, progress.state);
      output.write(`${describe(progress)}\n`);
    },
    finish() {},
  };
}

/** Draws one bar per layer and redraws them in place as layers progress. */
export function barRenderer(output: WriteStream): ProgressRenderer {
  const lines: string[] = [];
  let drawn = 0;

  const draw = () => {
    if (drawn > 0) output.write(`\x1b[${drawn}A`);
    for (const line of lines) output.write(`\x1b[2K${line}\n`);
    drawn = lines.length;
  };

  return {
    update(progress) {
      const fraction =
        progress.state === "done" || progress.state === "cached"
          ? 1
          : progress.bytesTotal
            ? Math.min(1, (progress.bytesDone ?? 0) / progress.bytesTotal)
            : 0;
      const filled = Math.round(fraction * BAR_WIDTH);
      const bar = `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`;
      while (lines.length <= progress.index) lines.push("");
      lines[progress.index] = `${bar} ${describe(progress)}`;
      draw();
    },
    finish() {},
  };
}

export function progressRenderer(output: NodeJS.WriteStream): ProgressRenderer {
  return output.isTTY ? barRenderer(output as WriteStream) : lineRenderer(output);
}
