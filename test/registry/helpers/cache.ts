import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync } from "node:fs";
import { join, relative } from "node:path";

/** Lists every file below `root`, relative to it. */
export function listFiles(root: string): string[] {
  if (!existsSync(root)) return [];
  const files: string[] = [];
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else files.push(relative(root, path));
    }
  };
  walk(root);
  return files.sort();
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest("hex")}`;
}

/**
 * Returns the files in a blob cache that are not verified blobs: temporary
 * files, and files whose content does not hash to their name.
 */
export async function unverifiedFiles(root: string): Promise<string[]> {
  const bad: string[] = [];
  for (const file of listFiles(root)) {
    const match = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(file);
    if (!match || (await sha256File(join(root, file))) !== `sha256:${match[1]}`) bad.push(file);
  }
  return bad;
}

export function cachedDigests(root: string): string[] {
  return listFiles(root)
    .map((file) => /^blobs\/sha256\/([0-9a-f]{64})$/.exec(file)?.[1])
    .filter((hex): hex is string => hex !== undefined)
    .map((hex) => `sha256:${hex}`);
}
