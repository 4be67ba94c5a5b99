// Several processes converting one image at once, and conversions killed
// with SIGKILL: each layer is converted once, and a crash leaves a store
// that verify reports clean and a retry completes.

import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

import { createChain } from "../../src/chain/create.js";
import type { ChainProgress } from "../../src/chain/types.js";
import { prune } from "../../src/store/prune.js";
import { Store } from "../../src/store/store.js";
import { verifyStore } from "../../src/store/verify.js";
import { hasImage, testdataDir } from "../image/testdata.js";
import { listChain, listDirectory } from "./oracles.js";

const child = join(import.meta.dirname, "helpers", "create-child.ts");
const scratch = mkdtempSync(join(tmpdir(), "layerdisk-concurrency-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const image = "debian-python";
const reference = `oci-layout:${join(testdataDir, image)}:latest`;

interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  events: ChainProgress[];
  stderr: string;
}

function startChild(store: string) {
  const process_ = spawn(process.execPath, ["--import", "tsx", child, reference, store], { stdio: ["ignore", "pipe", "pipe"] });
  const run: ChildRun = { code: null, signal: null, events: [], stderr: "" };
  let buffered = "";
  process_.stdout.on("data", (chunk: Buffer) => {
    buffered += chunk.toString("utf8");
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    for (const line of lines) {
      const message = JSON.parse(line) as { progress?: ChainProgress };
      if (message.progress) run.events.push(message.progress);
    }
  });
  process_.stderr.on("data", (chunk: Buffer) => (run.stderr += chunk.toString("utf8")));
  const exited = new Promise<ChildRun>((resolve) =>
    process_.on("exit", (code, signal) => {
      run.code = code;
      run.signal = signal;
      resolve(run);
    }),
  );
  return { process: process_, run, exited };
}

/** A small seeded generator (mulberry32), so a failing kill schedule can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe.skipIf(!hasImage(image))("concurrent and interrupted conversions", () => {
  it("four processes convert each layer once", async () => {
    const store = join(scratch, "concurrent");
    const children = [1, 2, 3, 4].map(() => startChild(store));
    const runs = await Promise.all(children.map((entry) => entry.exited));

    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    const conversions = runs.flatMap((run) =>
      run.events.filter((event) => event.type === "layer" && event.state === "done").map((event) => (event as { chainId: string }).chainId),
    );
    expect(conversions.sort()).toEqual([...new Set(conversions)].sort());
    expect(conversions).toHaveLength(3);
  });

  it("SIGKILL mid-conversion leaves a clean store", async () => {
    const seed = Number(process.env.LAYERDISK_KILL_SEED ?? Date.now() % 100_000);
    console.log(`kill schedule seed: ${seed} (replay with LAYERDISK_KILL_SEED=${seed})`);
    const next = random(seed);
    const storeRoot = join(scratch, "killed");

    for (let attempt = 0; attempt < 3; attempt++) {
      const { process: running, exited } = startChild(storeRoot);
      const delay = 500 + Math.floor(next() * 8000);
      const timer = setTimeout(() => running.kill("SIGKILL"), delay);
      const run = await exited;
      clearTimeout(timer);
      expect(run.code === 0 || run.signal === "SIGKILL", run.stderr).toBe(true);

      const store = await new Store(storeRoot).open();
      const verified = await verifyStore(store);
      expect(verified.checks.filter((check) => !check.ok)).toEqual([]);
      for (const parametersId of readdirSync(join(storeRoot, "layers"))) {
        for (const name of readdirSync(join(storeRoot, "layers", parametersId))) {
          expect(name.startsWith(".tmp-") || /^[0-9a-f]{64}\.(qcow2|json)$/.test(name), name).toBe(true);
        }
      }
    }

    const store = await new Store(storeRoot).open();
    const result = await createChain(reference, { store });
    expect(listChain(result.disk)).toBe(listDirectory(join(testdataDir, `${image}.rootfs`)));

    const pruned = await prune(store);
    expect(pruned.removedLayers).toEqual([]);
    const leftovers = readdirSync(store.layerFolder(readdirSync(join(storeRoot, "layers"))[0]!)).filter((name) => name.startsWith("."));
    expect(leftovers).toEqual([]);
  });
});
