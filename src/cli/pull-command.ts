/** `layerdisk pull REF`: download an image into the store without converting it. */

import { pullToStore } from "../chain/pull.js";
import type { PullProgress } from "../registry/progress.js";
import { registryOptions } from "./args.js";
import type { Store } from "../store/store.js";
import type { CommandOutput } from "./store-commands.js";

export interface PullFlags {
  platform?: string;
  "insecure-registry"?: string[];
  "https-registry"?: string[];
  "ca-file"?: string[];
}

/** Shortest interval between two progress lines, in milliseconds. */
const LINE_INTERVAL_MS = 1000;

function mebibytes(bytes: number): string {
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** Formats bytes done, rate and layers done as one line. */
export function describePull(event: PullProgress): string {
  return (
    `${mebibytes(event.totalBytesDone)} of ${mebibytes(event.totalBytes)}, ${mebibytes(event.bytesPerSecond)}/s, ` +
    `${event.layersDone}/${event.layersTotal} layers`
  );
}

/** Writes a progress line when a layer finishes, and at most once a second otherwise. */
export function pullProgressWriter(output: NodeJS.WritableStream): (event: PullProgress) => void {
  let last = 0;
  return (event) => {
    const now = Date.now();
    if (!event.layerDone && now - last < LINE_INTERVAL_MS) return;
    last = now;
    output.write(`${describePull(event)}\n`);
  };
}

export async function pullCommand(store: Store, reference: string, flags: PullFlags, output: CommandOutput, signal: AbortSignal): Promise<number> {
  const record = await pullToStore(reference, {
    store,
    signal,
    platform: flags.platform,
    ...registryOptions(flags),
    onProgress: pullProgressWriter(process.stderr),
  });
  if (output.json) {
    output.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
    return 0;
  }
  output.stdout.write(`pulled:   ${record.name}\nplatform: ${record.platform}\nmanifest: ${record.manifestDigest}\n`);
  output.stdout.write(`layers:   ${record.layerDigests.length}\n`);
  return 0;
}
