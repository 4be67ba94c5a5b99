/** `layerdisk create REF`: convert an image and print the overlay and chain. */

import { createChain } from "../chain/create.js";
import { resolveMaxDepth, type MaxDepthPreset } from "../chain/depth.js";
import { classifyReference } from "../chain/source.js";
import type { Store } from "../store/store.js";
import { UsageError, parseSize, registryOptions } from "./args.js";
import { lineRenderer, progressRenderer } from "./progress.js";
import { pullProgressWriter } from "./pull-command.js";
import type { CommandOutput } from "./store-commands.js";

export interface CreateFlags {
  platform?: string;
  "fs-size"?: string;
  "cluster-size"?: string;
  disk?: string;
  "max-depth"?: string;
  "insecure-registry"?: string[];
  "https-registry"?: string[];
  "ca-file"?: string[];
}

/** Parses `--max-depth N|PRESET`, turning an invalid value into a usage error. */
function parseMaxDepth(text: string | undefined): number | MaxDepthPreset | undefined {
  if (text === undefined) return undefined;
  try {
    resolveMaxDepth(text);
  } catch (error) {
    throw new UsageError(`--max-depth: ${(error as Error).message}`);
  }
  return /^\d+$/.test(text) ? Number(text) : (text as MaxDepthPreset);
}

export async function createCommand(
  store: Store,
  reference: string,
  flags: CreateFlags,
  output: CommandOutput,
  signal: AbortSignal,
): Promise<number> {
  // Progress goes to stderr, so stdout carries only the result (or JSON).
  // Download lines would break the redrawn bars, so a pull uses plain lines.
  const pulls = classifyReference(reference).kind === "registry";
  const renderer = pulls ? lineRenderer(process.stderr) : progressRenderer(process.stderr);
  const downloads = pullProgressWriter(process.stderr);
  const result = await createChain(reference, {
    store,
    signal,
    platform: flags.platform,
    fsSize: flags["fs-size"] === undefined ? undefined : parseSize("--fs-size", flags["fs-size"]),
    clusterSize: flags["cluster-size"] === undefined ? undefined : parseSize("--cluster-size", flags["cluster-size"]),
    disk: flags.disk,
    maxDepth: parseMaxDepth(flags["max-depth"]),
    ...registryOptions(flags),
    onProgress: (event) => {
      if (event.type === "layer") renderer.update(event);
      else if (event.type === "download") downloads(event);
    },
  });
  renderer.finish();

  if (output.json) {
    output.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  }
  output.stdout.write(`disk:   ${result.disk}\n`);
  output.stdout.write(`chain:  ${result.chain.length} files under the overlay, bottom to top\n`);
  for (const file of result.chain) output.stdout.write(`        ${file}\n`);
  output.stdout.write(`image:  ${result.manifestDigest}\n`);
  return 0;
}
