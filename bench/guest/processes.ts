import type { ChildProcess } from "node:child_process";

/**
 * Child processes (QEMU, virtiofsd) that are still running. They are killed
 * when the Node process emits "exit". A Node process killed by a signal
 * emits nothing, and for that case withDeadline() bounds each child's life.
 */
const live = new Set<ChildProcess>();

function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
}

let hooked = false;

/**
 * Returns a command line that runs `command` under GNU timeout, so the
 * process dies at `deadlineMs` plus a grace period even if this Node
 * process is killed and its exit hook never runs. timeout(1) passes
 * SIGTERM on to the command, so stopProcess() still stops it cleanly.
 */
export function withDeadline(command: string, args: readonly string[], deadlineMs: number): [string, string[]] {
  const seconds = Math.ceil(deadlineMs / 1000) + 5;
  return ["timeout", ["--kill-after=5", String(seconds), command, ...args]];
}

/** Tracks `child` until it exits. */
export function track(child: ChildProcess): void {
  if (!hooked) {
    process.on("exit", killAll);
    hooked = true;
  }
  live.add(child);
  child.once("exit", () => live.delete(child));
}

/** Resolves when `child` has exited, whether it already had or not. */
export function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Sends SIGTERM, then SIGKILL after `graceMs`, and waits for the exit. */
export async function stopProcess(child: ChildProcess, graceMs = 2_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await waitForExit(child);
  clearTimeout(timer);
}
