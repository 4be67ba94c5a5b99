import { spawn } from "node:child_process";

import { GuestError } from "./errors.js";

export interface ExecResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs a host tool to completion and returns its output. Rejects with
 * ERR_GUEST_TOOL_FAILED on a non-zero exit, naming the command and its stderr.
 */
export function execTool(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", (error) => {
      reject(new GuestError("ERR_GUEST_TOOL_FAILED", `failed to start ${command}: ${error.message}`, { cause: error }));
    });
    child.on("close", (code, signal) => {
      const result = { stdout: Buffer.concat(stdout).toString("utf8"), stderr: Buffer.concat(stderr).toString("utf8") };
      if (code === 0) {
        resolve(result);
        return;
      }
      const status = signal === null ? `exit status ${code}` : `signal ${signal}`;
      const line = [command, ...args].join(" ");
      reject(new GuestError("ERR_GUEST_TOOL_FAILED", `${line} failed with ${status}: ${result.stderr.trim()}`));
    });
  });
}
