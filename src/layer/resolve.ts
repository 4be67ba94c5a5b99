import { LayerError } from "../errors.js";
import type { LayerTarget, NodeAttributes } from "./target.js";
import { joinPath } from "./path.js";

/** Linux's limit on symlinks followed in one lookup (MAXSYMLINKS, 40). */
export const MAX_SYMLINK_FOLLOWS = 40;

/**
 * Resolves directory components inside the image as a lookup chrooted at
 * the image root would: each symlink met is replaced by its target, an
 * absolute target restarts at the image root, and `..` stops at the root.
 * Missing components are kept as they are, so the caller can create them.
 * Returns clean components, none of which is a symlink.
 */
export function resolveInside(target: LayerTarget, components: readonly string[], name: string): string[] {
  const resolved: string[] = [];
  const pending = [...components].reverse();
  let follows = 0;

  while (pending.length > 0) {
    const part = pending.pop() as string;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      resolved.pop();
      continue;
    }

    const candidate = joinPath([...resolved, part]);
    const stat = target.lstat(candidate);
    if (stat?.type !== "symlink") {
      resolved.push(part);
      continue;
    }

    follows += 1;
    if (follows > MAX_SYMLINK_FOLLOWS) {
      throw new LayerError("ERR_LAYER_SYMLINK_LOOP", `Too many levels of symbolic links resolving ${name}.`, { path: name });
    }
    const link = target.readlink(candidate);
    if (link.startsWith("/")) resolved.length = 0;
    pending.push(...link.split("/").reverse());
  }

  return resolved;
}

/** Attributes Docker gives a parent directory that a layer's tar leaves out. */
export const IMPLICIT_DIRECTORY: NodeAttributes = { mode: 0o755, uid: 0, gid: 0, mtime: { sec: 0, nsec: 0 } };

/**
 * Creates each missing directory on a resolved path (mode 0755, owned by
 * root, as Docker does) and calls `onCreate` for it. Raises an error when a
 * component exists and is not a directory.
 */
export function ensureDirectories(
  target: LayerTarget,
  components: readonly string[],
  name: string,
  onCreate: (path: string) => void,
): void {
  for (let i = 1; i <= components.length; i++) {
    const path = joinPath(components.slice(0, i));
    const stat = target.lstat(path);
    if (stat === undefined) {
      target.mkdir(path, IMPLICIT_DIRECTORY);
      onCreate(path);
    } else if (stat.type !== "directory") {
      throw new LayerError("ERR_LAYER_NOT_A_DIRECTORY", `Cannot create ${name}: ${path} is not a directory.`, { path: name });
    }
  }
}
