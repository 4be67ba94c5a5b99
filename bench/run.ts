/**
 * Benchmark dispatcher behind `npm run bench` and `npm run bench:quick`.
 *
 *   node --import tsx bench/run.ts [--quick] [--suite NAME]... [--chain-top FILE] [--render FILE]
 *
 * --quick        a subset of each suite, for a run of a few minutes
 * --suite NAME   run only this suite (repeatable); default: all suites
 * --chain-top F  guest suite: measure the qcow2 chain whose top is F
 * --render F     guest suite: rewrite the docs from a stored JSON result, without booting
 *
 * Suites: guest (file-system workloads on four roots), depth (the same
 * reads on chains of 1 to 30 layers) and storage (bytes on disk of chains
 * against flat images). A full run of a suite rewrites its section of
 * docs/benchmarks.md and its files under docs/benchmarks/. A quick run only
 * prints its table and stores JSON under the cache directory.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { runConvertBenchmark } from "./convert/bench.js";
import { recordConvertBench, renderConvertBench } from "./convert/report.js";
import { runDepthBenchmark } from "./depth/bench.js";
import { depthSection, renderDepthTable } from "./depth/report.js";
import { readGuestBenchResult, runGuestBenchmark } from "./guest/bench.js";
import { cacheSubdir } from "./guest/cache.js";
import { recordGuestBench } from "./guest/report/docs.js";
import { renderTable } from "./guest/report/markdown.js";
import { writeSection } from "./guest/report/section.js";
import { runStorageBenchmark } from "./storage/bench.js";
import { renderStorageTables, storageSection } from "./storage/report.js";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

interface SuiteContext {
  quick: boolean;
  values: { "chain-top"?: string; render?: string };
  command: string;
}

async function runGuestSuite(context: SuiteContext): Promise<void> {
  const log = (line: string): void => console.error(line);
  const result =
    context.values.render !== undefined
      ? await readGuestBenchResult(context.values.render)
      : await runGuestBenchmark({ quick: context.quick, chainTop: context.values["chain-top"], command: context.command, log });
  // A quick run leaves the committed record of the last full run alone,
  // unless it is rendered on purpose with --render.
  const updateDocs = context.values.render !== undefined || !result.quick;
  const cached = await recordGuestBench(result, repoRoot, updateDocs);
  console.log(renderTable(result));
  log(`guest bench: results in ${cached}${updateDocs ? " and docs/benchmarks.md" : "; docs/ is updated only by a full run"}`);
}

async function runConvertSuite(context: SuiteContext): Promise<void> {
  const log = (line: string): void => console.error(line);
  const result = await runConvertBenchmark({ quick: context.quick, command: context.command, log, repoRoot });
  const written = await recordConvertBench(result, repoRoot);
  log(renderConvertBench(result));
  log(`convert bench: results in ${written}${context.quick ? "" : " and docs/benchmarks.md"}`);
}

/** Stores a quick run's JSON in the cache, or a full run's in docs/, and returns where it went. */
async function recordSuite(context: SuiteContext, name: string, result: unknown, section: () => Parameters<typeof writeSection>[3]): Promise<string> {
  if (context.quick) {
    const file = path.join(await cacheSubdir("results"), `${name}-${new Date().toISOString().replaceAll(":", "-")}.json`);
    await writeFile(file, `${JSON.stringify(result, null, 2)}\n`);
    return file;
  }
  await writeSection(repoRoot, `${name}.json`, result, section());
  return `docs/benchmarks/${name}.json and docs/benchmarks.md`;
}

async function runDepthSuite(context: SuiteContext): Promise<void> {
  const log = (line: string): void => console.error(line);
  const result = await runDepthBenchmark({ quick: context.quick, command: context.command, log });
  const where = await recordSuite(context, "depth", result, () => depthSection(result));
  console.log(renderDepthTable(result));
  log(`depth bench: results in ${where}`);
}

async function runStorageSuite(context: SuiteContext): Promise<void> {
  const log = (line: string): void => console.error(line);
  const result = await runStorageBenchmark({ quick: context.quick, command: context.command, log });
  const where = await recordSuite(context, "storage", result, () => storageSection(result));
  console.log(renderStorageTables(result));
  log(`storage bench: results in ${where}`);
}

/** Suites by name, in the order a run without --suite runs them. Other benchmark suites register here. */
const SUITES: Record<string, (context: SuiteContext) => Promise<void>> = {
  storage: runStorageSuite,
  guest: runGuestSuite,
  convert: runConvertSuite,
  depth: runDepthSuite,
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      suite: { type: "string", multiple: true },
      "chain-top": { type: "string" },
      render: { type: "string" },
    },
  });
  const names = values.suite ?? Object.keys(SUITES);
  const unknown = names.filter((name) => !(name in SUITES));
  if (unknown.length > 0) {
    throw new Error(`unknown benchmark suite ${unknown.join(", ")}; known suites: ${Object.keys(SUITES).join(", ")}`);
  }
  const extra = [...(values.suite ?? []).flatMap((name) => ["--suite", name])];
  if (values["chain-top"] !== undefined) extra.push("--chain-top", values["chain-top"]);
  const command = `${values.quick === true ? "npm run bench:quick" : "npm run bench"}${extra.length > 0 ? ` -- ${extra.join(" ")}` : ""}`;
  for (const name of names) {
    await SUITES[name]!({ quick: values.quick === true, values, command });
  }
}

await main();
