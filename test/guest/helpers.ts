import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import path from "node:path";

import { expect } from "vitest";

import { bootGuest, testdataDir, type BootOptions, type BootResult } from "../../bench/guest/index.js";

/** Returns the reference unpack of Debian bookworm minbase plus python3 from the test corpus. */
export function pythonRootfs(): string {
  return path.join(testdataDir(), "debian-python.rootfs");
}

/** True when the test corpus has finished building the python image. */
export function pythonRootfsReady(): boolean {
  return existsSync(path.join(testdataDir(), "debian-python.stamp"));
}

/** The command every boot test runs: it needs the dynamic loader, libc and the stdlib from the root. */
export const PYTHON_SMOKE_COMMAND = "python3 -c 'print(1)'";

/**
 * Boots a guest that runs PYTHON_SMOKE_COMMAND and asserts that it printed
 * 1 and nothing else. Suites that build disks call this with their own disk.
 */
export async function expectPythonRuns(options: Omit<BootOptions, "command">): Promise<BootResult> {
  const result = await bootGuest({ ...options, command: PYTHON_SMOKE_COMMAND });
  expect(result.stderr).toBe("");
  expect(result.stdout).toBe("1\n");
  expect(result.exitCode).toBe(0);
  return result;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
