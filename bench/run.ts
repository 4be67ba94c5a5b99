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
 * A full run of the guest suite rewrites its section of docs/benchmarks.md
 * and the files under docs/benchmarks/. A quick run only prints its table
 * and stores JSON under the cache directory.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { runConvertBenchmark } from "./convert/bench.js";
import { recordConvertBench, renderConvertBench } from "./convert/report.js";
import { readGuestBenchResult, runGuestBenchmark } from "./guest/bench.js";
import { recordGuestBench } from "./guest/report/docs.js";
import { renderTable } from "./guest/report/markdown.js";

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

/** Suites by name. Other benchmark suites register here. */
const SUITES: Record<string, (context: SuiteContext) => Promise<void>> = {
  guest: runGuestSuite,
  convert: runConvertSuite,
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
  let command = values.quick === true ? "npm run bench:quick" : "npm run bench";
  const extra = [...(values.suite ?? []).flatMap((name) => ["--suite", name])];
  if (values["chain-top"] !== undefined) extra.push("--chain-top", values["chain-top"]);
  if (extra.length > 0) command += ` -- ${extra.join(" ")}`;
  for (const name of names) {
    await SUITES[name]!({ quick: values.quick === true, values, command });
  }
}

await main();
