import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";

import { GuestError } from "./errors.js";
import { COMMAND_START_MARKER, RESULT_MAGIC } from "./init-script.js";
import { stopProcess, track, withDeadline } from "./processes.js";

export const QEMU_PATH = process.env.LAYERDISK_QEMU ?? "qemu-system-x86_64";

/** Accelerators the harness can start QEMU with. */
export type Accelerator = "kvm" | "tcg";

export interface QemuRun {
  /** Arguments after the machine and accelerator options: kernel, initrd, disks. */
  args: string[];
  accel: Accelerator;
  /** File that QEMU writes the second serial port (the guest's ttyS1) to. */
  resultFile: string;
  timeoutMs: number;
  memoryMiB: number;
  cpus: number;
}

export interface QemuOutcome {
  console: string;
  /** Milliseconds from spawning QEMU until /init printed the command-start marker. */
  bootMs: number | undefined;
  /** Milliseconds from spawning QEMU until it exited. */
  totalMs: number;
  exitCode: number | null;
  timedOut: boolean;
}

/** Options shared by every boot. Guest RAM comes from memfd so that vhost-user (virtiofsd) can map it. */
export function machineArgs(run: QemuRun): string[] {
  const accel = run.accel === "tcg" ? "tcg,thread=multi" : "kvm";
  return [
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    "-machine", "pc",
    "-accel", accel,
    "-smp", String(run.cpus),
    "-m", `${run.memoryMiB}M`,
    "-object", `memory-backend-memfd,id=mem,size=${run.memoryMiB}M,share=on`,
    "-numa", "node,memdev=mem",
    "-no-reboot",
    "-monitor", "none",
    "-serial", "stdio",
    "-serial", `file:${run.resultFile}`,
  ];
}

/**
 * Runs QEMU until the guest powers off or `timeoutMs` passes, then kills it.
 * The returned promise settles only after QEMU has exited.
 */
export async function runQemu(run: QemuRun): Promise<QemuOutcome> {
  const started = performance.now();
  const [command, args] = withDeadline(QEMU_PATH, [...machineArgs(run), ...run.args], run.timeoutMs);
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  track(child);

  let console = "";
  let bootMs: number | undefined;
  const onData = (chunk: Buffer): void => {
    console += chunk.toString("utf8");
    if (bootMs === undefined && console.includes(COMMAND_START_MARKER)) bootMs = performance.now() - started;
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);

  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void stopProcess(child, 500);
  }, run.timeoutMs);

  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new GuestError("ERR_GUEST_TOOL_FAILED", `failed to start ${QEMU_PATH}: ${error.message}`, { cause: error }));
    });
    child.once("close", (code) => resolve(code));
  });
  clearTimeout(timer);
  return { console, bootMs, totalMs: performance.now() - started, exitCode, timedOut };
}

/** The command's result as /init reported it on the second serial port. */
export interface GuestReport {
  status: "ok" | "error";
  exitCode: number;
  stdout: string;
  stderr: string;
  /** Step of /init that produced the report: `run` for a finished command. */
  stage: string;
}

/** Parses the report /init wrote to ttyS1, or returns undefined if it is missing or cut short. */
export async function readReport(resultFile: string): Promise<GuestReport | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(resultFile);
  } catch {
    return undefined;
  }
  const start = bytes.indexOf(RESULT_MAGIC);
  if (start < 0) return undefined;
  const lineEnd = bytes.indexOf(0x0a, start);
  if (lineEnd < 0) return undefined;
  const fields = bytes.subarray(start + RESULT_MAGIC.length, lineEnd).toString("utf8").trim().split(/\s+/);
  const [status, exitText, stdoutText, stderrText, stage] = fields;
  const stdoutLength = Number(stdoutText);
  const stderrLength = Number(stderrText);
  if ((status !== "ok" && status !== "error") || !Number.isInteger(stdoutLength) || !Number.isInteger(stderrLength)) return undefined;
  const body = bytes.subarray(lineEnd + 1);
  if (body.length < stdoutLength + stderrLength) return undefined;
  return {
    status,
    exitCode: Number(exitText),
    stdout: body.subarray(0, stdoutLength).toString("utf8"),
    stderr: body.subarray(stdoutLength, stdoutLength + stderrLength).toString("utf8"),
    stage: stage ?? "",
  };
}
