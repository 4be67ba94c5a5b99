/** `layerdisk export REF --format qcow2|raw OUT`: one standalone disk file from a chain. */

import { statSync } from "node:fs";

import { exportChain } from "../chain/export.js";
import { LayerdiskError } from "../errors.js";
import type { ImageFormat } from "../qcow2/index.js";
import type { Store } from "../store/store.js";
import { UsageError } from "./args.js";
import type { CommandOutput } from "./store-commands.js";

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function parseFormat(text: string | undefined): ImageFormat {
  if (text === undefined) return "raw";
  if (text === "raw" || text === "qcow2") return text;
  throw new UsageError(`invalid --format "${text}": use raw or qcow2`);
}

/**
 * Finds the top file of the chain to export: `source` itself when it is a
 * qcow2 file (such as an overlay), or else the top layer of the one store
 * image it names.
 */
async function findTop(store: Store, source: string): Promise<{ top: string; allowedDir?: string }> {
  if (isFile(source)) return { top: source };
  const images = await store.findImages(source);
  if (images.length !== 1) {
    const problem = images.length === 0 ? "matches no image" : `matches ${images.length} images`;
    throw new LayerdiskError("ERR_IMAGE_NOT_IN_STORE", `"${source}" is not a file and ${problem} in ${store.root}; run "layerdisk ls"`);
  }
  const image = images[0]!;
  const topChainId = image.chainIds.at(-1);
  if (topChainId === undefined) throw new LayerdiskError("ERR_IMAGE_NO_LAYERS", `image ${image.reference} has no layers`);
  return { top: store.layerFile(image.parametersId, topChainId), allowedDir: store.layerFolder(image.parametersId) };
}

export async function exportCommand(
  store: Store,
  operands: string[],
  flags: { format?: string },
  output: CommandOutput,
): Promise<number> {
  if (operands.length !== 2) throw new UsageError(`"layerdisk export" takes REF and OUT, got ${operands.length} operands`);
  const [source, destination] = operands as [string, string];
  const format = parseFormat(flags.format);
  const { top, allowedDir } = await findTop(store, source);

  const file = await exportChain(top, destination, { format, ...(allowedDir === undefined ? {} : { allowedDir }) });
  if (output.json) output.stdout.write(`${JSON.stringify({ source: top, file, format }, null, 2)}\n`);
  else output.stdout.write(`exported ${top} as ${format} to ${file}\n`);
  return 0;
}
