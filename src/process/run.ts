/** Running external programs (qemu-img, e2fsck) and capturing their output. */

import { spawn } from "node:child_process";

import { LayerdiskError } from "../errors.js";

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs `command` without a shell and resolves with its exit code and output, whatever the code. */
export function runProgram(command: string, args: readonly string[], signal?: AbortSignal): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], signal });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") {
        reject(
          new LayerdiskError("ERR_PROGRAM_MISSING", `${command} is not installed; install it (see scripts/install-system-deps.sh)`, {
            cause: error,
          }),
        );
        return;
      }
      reject(error);
    });
    child.on("close", (code, killedBy) => {
      resolve({
        exitCode: code ?? (killedBy ? 128 : 1),
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
      });
    });
  });
}
