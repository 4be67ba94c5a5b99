/**
 * Publishing files so that readers never see them half-written: write to a
 * temporary name in the same folder, fsync the file, rename it into place,
 * then fsync the folder so the rename itself survives a crash.
 */

import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Returns a temporary name beside `path`, hidden from store listings by its leading dot. */
export function temporaryPathFor(path: string): string {
  const suffix = `${process.pid}-${randomBytes(4).toString("hex")}`;
  return join(dirname(path), `.tmp-${basename(path)}-${suffix}`);
}

export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Renames a complete, closed file into place durably. */
export async function publishFile(temporaryPath: string, finalPath: string): Promise<void> {
  await fsyncPath(temporaryPath);
  await rename(temporaryPath, finalPath);
  await fsyncPath(dirname(finalPath));
}

/** Writes `data` to `path` atomically and durably. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const temporaryPath = temporaryPathFor(path);
  try {
    const handle = await open(temporaryPath, "wx", 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporaryPath, path);
    await fsyncPath(dirname(path));
  } catch (error) {
    await rm(temporaryPath, { force: true });
    throw error;
  }
}
