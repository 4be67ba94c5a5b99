import type { ChildProcess } from "node:child_process";

/**
 * Child processes (QEMU, virtiofsd) that are still running. If the Node
 * process exits while a guest runs, for example when a test times out and
 * vitest tears the worker down, they are killed so none are left behind.
 */
const live = new Set<ChildProcess>();

function killAll(): void {
  for (const child of live) child.kill("SIGKILL");
}

let hooked = false;

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
