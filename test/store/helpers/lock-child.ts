// Child process for the lock tests: under the lock, reads a counter file,
// waits, and writes the counter back plus one. Lost updates would show that
// two holders overlapped.
import { readFileSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import { withFileLock } from "../../../src/store/lock.js";

const [lockPath, counterPath, mode] = process.argv.slice(2) as [string, string, string];

await withFileLock(lockPath, async () => {
  if (mode === "hold-forever") {
    process.stdout.write("locked\n");
    await sleep(60_000);
  }
  const value = Number(readFileSync(counterPath, "utf8"));
  await sleep(30);
  writeFileSync(counterPath, String(value + 1));
});
