import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";

import { GuestError } from "./errors.js";
import { stopProcess, track, withDeadline } from "./processes.js";

/** The C virtiofsd that Debian 12's QEMU 7.2 package installs. */
export const VIRTIOFSD_PATH = process.env.LAYERDISK_VIRTIOFSD ?? "/usr/lib/qemu/virtiofsd";

/** The virtiofsd cache policies: `auto` revalidates after a timeout, `always` trusts the guest cache. */
export type VirtiofsCache = "auto" | "always" | "none";

export interface VirtiofsDaemon {
  socketPath: string;
  stop(): Promise<void>;
  /** Everything the daemon wrote to stderr so far. */
  log(): string;
}

const SOCKET_WAIT_MS = 5_000;

function waitForSocket(child: ChildProcess, socketPath: string, log: () => string): Promise<void> {
  const deadline = Date.now() + SOCKET_WAIT_MS;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (existsSync(socketPath)) return resolve();
      if (child.exitCode !== null || Date.now() > deadline) {
        const reason = child.exitCode !== null ? `exited with status ${child.exitCode}` : `created no socket within ${SOCKET_WAIT_MS} ms`;
        return reject(new GuestError("ERR_GUEST_VIRTIOFSD_FAILED", `${VIRTIOFSD_PATH} ${reason}: ${log().trim()}`));
      }
      setTimeout(poll, 20);
    };
    poll();
  });
}

/** Starts virtiofsd sharing `sourceDir` on a new socket and waits until QEMU can connect. It is killed after `deadlineMs`. */
export async function startVirtiofsd(
  sourceDir: string,
  socketPath: string,
  cache: VirtiofsCache,
  deadlineMs: number,
): Promise<VirtiofsDaemon> {
  const daemonArgs = [`--socket-path=${socketPath}`, "-o", `source=${sourceDir}`, "-o", `cache=${cache}`];
  const [command, args] = withDeadline(VIRTIOFSD_PATH, daemonArgs, deadlineMs);
  const child = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  track(child);
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (error) =>
      reject(new GuestError("ERR_GUEST_VIRTIOFSD_FAILED", `failed to start ${VIRTIOFSD_PATH}: ${error.message}`, { cause: error })),
    );
  });
  await spawned;
  const log = (): string => stderr;
  try {
    await waitForSocket(child, socketPath, log);
  } catch (error) {
    await stopProcess(child);
    throw error;
  }
  return { socketPath, log, stop: () => stopProcess(child) };
}
