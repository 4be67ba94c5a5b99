// Runs the quick subset of the guest, depth and storage benchmarks, which
// CI does not run otherwise, so a change to createChain, the boot harness
// or fsbench.py that breaks them fails here. It checks that every suite
// produces complete results and renders them, never how fast anything was.
import { existsSync } from "node:fs";
import path from "node:path";

import { describe, expect, it } from "vitest";

import { runDepthBenchmark } from "../../bench/depth/bench.js";
import { renderDepthTable } from "../../bench/depth/report.js";
import { runGuestBenchmark } from "../../bench/guest/bench.js";
import { testdataDir } from "../../bench/guest/cache.js";
import { renderTable } from "../../bench/guest/report/markdown.js";
import { runStorageBenchmark } from "../../bench/storage/bench.js";
import { renderStorageTables } from "../../bench/storage/report.js";

const corpusReady = ["debian-minbase", "debian-python"].every((name) => existsSync(path.join(testdataDir(), `${name}.stamp`)));
const isRoot = process.getuid?.() === 0;
const log = (): void => {};

// The quick guest run took about 1.5 minutes under TCG on 2 shared cores.
// A first run also converts the images and builds the depth image.
const SUITE_TIMEOUT_MS = 600_000;

describe.skipIf(!corpusReady || !isRoot)("bench:quick", () => {
  it("guest suite boots layerdisk's chain", async () => {
    const result = await runGuestBenchmark({ quick: true, command: "vitest", log });

    expect(result.chain?.reference).toContain("debian-python");
    expect(result.chain?.files).toHaveLength(3);
    expect(result.chain?.fileCount).toBe(4);
    expect(result.modes.map((mode) => mode.id)).toEqual(["virtiofs-auto", "qcow2-chain", "raw-ext4"]);
    for (const mode of result.modes) {
      expect(mode.workloads.stat_usr?.samplesMs.length).toBe(result.repetitions);
    }
    expect(renderTable(result)).toContain("walk /usr and lstat every path");
  }, SUITE_TIMEOUT_MS);

  it("depth suite boots a 5-layer chain", async () => {
    const result = await runDepthBenchmark({ quick: true, command: "vitest", log });

    expect(result.cases).toHaveLength(1);
    expect(result.cases[0]!.chain.files).toHaveLength(5);
    expect(result.cases[0]!.result.workloads.read_stdlib_cold?.samplesMs.length).toBe(result.repetitions);
    expect(renderDepthTable(result)).toContain("depth 5");
  }, SUITE_TIMEOUT_MS);

  it("storage suite measures debian-minbase", async () => {
    const result = await runStorageBenchmark({ quick: true, command: "vitest", log });

    const [minbase] = result.images;
    expect(minbase?.image).toBe("debian-minbase");
    expect(minbase?.chainAllocatedBytes).toBeGreaterThan(0);
    expect(minbase?.uncompressedBytes).toBeGreaterThan(0);
    expect(minbase?.flatQcow2AllocatedBytes).toBeGreaterThan(0);
    expect(renderStorageTables(result)).toContain("debian-minbase");
  }, SUITE_TIMEOUT_MS);
});
