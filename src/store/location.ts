/**
 * Location of the chain store: `$LAYERDISK_STORE`, else
 * `$XDG_CACHE_HOME/layerdisk`, else `~/.cache/layerdisk`.
 */

import { homedir } from "node:os";
import { join, resolve } from "node:path";

export function defaultStoreRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LAYERDISK_STORE) return resolve(env.LAYERDISK_STORE);
  if (env.XDG_CACHE_HOME) return resolve(env.XDG_CACHE_HOME, "layerdisk");
  return join(homedir(), ".cache", "layerdisk");
}
