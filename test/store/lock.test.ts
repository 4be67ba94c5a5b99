import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { isFileLocked, withFileLock, withSharedFileLock } from "../../src/store/lock.js";

const child = join(import.meta.dirname, "helpers", "lock-child.ts");

function runChild(lockPath: string, counterPath: string, mode = "increment") {
  return spawn(process.execPath, ["--import", "tsx", child, lockPath, counterPath, mode], {
    stdio: ["ignore", "pipe", "inherit"],
  });
}

function exited(process: ReturnType<typeof spawn>): Promise<number | null> {
  return new Promise((resolve) => process.on("exit", (code) => resolve(code)));
}

let folder: string;
beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), "layerdisk-lock-"));
});
afterEach(() => {
  rmSync(folder, { recursive: true, force: true });
});

describe("file locks", () => {
  it("serialize four processes", async () => {
    const lockPath = join(folder, "counter.lock");
    const counterPath = join(folder, "counter");
    writeFileSync(counterPath, "0");

    const codes = await Promise.all([1, 2, 3, 4].map(() => exited(runChild(lockPath, counterPath))));

    expect(codes).toEqual([0, 0, 0, 0]);
    expect(readFileSync(counterPath, "utf8")).toBe("4");
  });

  it("serialize callers in one process", async () => {
    const lockPath = join(folder, "inner.lock");
    let active = 0;
    let maxActive = 0;
    await Promise.all(
      [1, 2, 3].map(() =>
        withFileLock(lockPath, async () => {
          active += 1;
          maxActive = Math.max(maxActive, active);
          await new Promise((resolve) => setTimeout(resolve, 10));
          active -= 1;
        }),
      ),
    );
    expect(maxActive).toBe(1);
  });

  it("are released when the holder is killed", async () => {
    const lockPath = join(folder, "killed.lock");
    const counterPath = join(folder, "counter");
    writeFileSync(counterPath, "0");

    const holder = runChild(lockPath, counterPath, "hold-forever");
    await new Promise<void>((resolve) => holder.stdout!.once("data", () => resolve()));
    expect(await isFileLocked(lockPath)).toBe(true);

    holder.kill("SIGKILL");
    await exited(holder);
    expect(await isFileLocked(lockPath)).toBe(false);
  });

  it("let shared holders overlap but not an exclusive one", async () => {
    const lockPath = join(folder, "shared.lock");
    await withSharedFileLock(lockPath, async () => {
      await withSharedFileLock(lockPath, async () => {
        expect(await isFileLocked(lockPath)).toBe(true);
      });
    });
    expect(await isFileLocked(lockPath)).toBe(false);
  });
});
