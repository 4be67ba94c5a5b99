/** The store commands: ls, inspect, rm, prune, verify. */

import { resolve } from "node:path";

import { deleteOverlay } from "../chain/overlay.js";
import { LayerdiskError } from "../errors.js";
import { prune } from "../store/prune.js";
import { Store } from "../store/store.js";
import { verifyStore } from "../store/verify.js";

export interface CommandOutput {
  json: boolean;
  stdout: NodeJS.WritableStream;
}

function printJson(output: CommandOutput, value: unknown): void {
  output.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 ** 2 ? `${(bytes / 1024 ** 2).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

export async function listCommand(store: Store, output: CommandOutput): Promise<number> {
  const images = await store.listImages();
  const layers = await store.listLayers();
  const overlays = await store.listOverlays();
  if (output.json) {
    printJson(output, { images, layers, overlays });
    return 0;
  }

  output.stdout.write(`IMAGE KEY         REFERENCE  LAYERS  MANIFEST\n`);
  for (const image of images) {
    output.stdout.write(`${image.key.slice(0, 16)}  ${image.reference}  ${image.chainIds.length}  ${image.manifestDigest}\n`);
  }
  const layerBytes = layers.reduce((sum, layer) => sum + layer.fileBytes, 0);
  output.stdout.write(`\n${layers.length} layer files, ${formatBytes(layerBytes)}; ${overlays.length} overlays\n`);
  for (const overlay of overlays) {
    output.stdout.write(`overlay ${overlay.id}  ${overlay.reference}  ${overlay.disk}\n`);
  }
  return 0;
}

async function findOne(store: Store, query: string) {
  const matches = await store.findImages(query);
  if (matches.length === 0) {
    throw new LayerdiskError("ERR_IMAGE_NOT_IN_STORE", `no image in ${store.root} matches "${query}"; run "layerdisk ls" to see the images`);
  }
  return matches;
}

export async function inspectCommand(store: Store, queries: string[], output: CommandOutput): Promise<number> {
  const results = [];
  for (const query of queries) {
    for (const image of await findOne(store, query)) {
      const chain = image.chainIds.map((chainId) => store.layerFile(image.parametersId, chainId));
      results.push({ ...image, chain });
    }
  }
  if (output.json) {
    printJson(output, results);
    return 0;
  }
  for (const image of results) {
    output.stdout.write(`reference:  ${image.reference}\nplatform:   ${image.platform}\nmanifest:   ${image.manifestDigest}\n`);
    output.stdout.write(`config:     ${image.configDigest}\nchain:\n`);
    for (const file of image.chain) output.stdout.write(`  ${file}\n`);
    output.stdout.write(`config:     ${JSON.stringify(image.config)}\n\n`);
  }
  return 0;
}

/** Returns the pull records a query names by reference as given, full name or manifest digest. */
async function findPulls(store: Store, query: string) {
  const pulls = await store.listPulls();
  return pulls.filter((pull) => pull.reference === query || pull.name === query || pull.manifestDigest === query);
}

export async function removeCommand(store: Store, queries: string[], output: CommandOutput): Promise<number> {
  const removed: string[] = [];
  for (const query of queries) {
    // An overlay is named by its id or its disk path; removing it deletes the disk.
    const overlay = (await store.listOverlays()).find((record) => record.id === query || record.disk === resolve(query));
    if (overlay) {
      await deleteOverlay(store, overlay.id);
      removed.push(`overlay ${overlay.id} (${overlay.disk})`);
      continue;
    }

    // A pulled image that was never converted has only a pull record.
    const pulls = await findPulls(store, query);
    for (const pull of pulls) {
      await store.removePull(pull.key);
      removed.push(pull.reference);
    }
    const images = pulls.length > 0 ? await store.findImages(query) : await findOne(store, query);
    for (const image of images) {
      await store.removeImage(image.key);
      removed.push(image.reference);
    }
  }
  if (output.json) printJson(output, { removed });
  else for (const reference of removed) output.stdout.write(`removed ${reference}; run "layerdisk prune" to free its layers\n`);
  return 0;
}

export async function pruneCommand(store: Store, output: CommandOutput): Promise<number> {
  const result = await prune(store);
  if (output.json) {
    printJson(output, result);
    return 0;
  }
  output.stdout.write(
    `removed ${result.removedLayers.length} layers, ${result.removedBlobs.length} blobs, ` +
      `${result.removedOverlayRecords.length} overlay records, ${result.removedTemporaryFiles.length} temporary files; ` +
      `freed ${formatBytes(result.freedBytes)}\n`,
  );
  return 0;
}

/** Exit status of `verify` when a check fails. */
export const EXIT_VERIFY_FAILED = 3;

export async function verifyCommand(store: Store, output: CommandOutput): Promise<number> {
  const result = await verifyStore(store, (check) => {
    if (output.json) return;
    output.stdout.write(`${check.ok ? "ok  " : "FAIL"} ${check.tool} ${check.subject}\n`);
    if (check.output) output.stdout.write(`${check.output}\n`);
  });
  if (output.json) printJson(output, result);
  else output.stdout.write(result.clean ? `store is clean (${result.checks.length} checks)\n` : "store has problems\n");
  return result.clean ? 0 : EXIT_VERIFY_FAILED;
}
