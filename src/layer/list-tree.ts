import { toNanoseconds, type Timespec } from "../tar/time.js";
import { escapeByteString, escapeBytes } from "./escape.js";
import type { MemoryNode, MemoryTarget } from "./memory-target.js";
import { childPath } from "./path.js";

const TYPE_LETTERS: Record<MemoryNode["type"], string> = {
  file: "f",
  directory: "d",
  symlink: "l",
  "character-device": "c",
  "block-device": "b",
  fifo: "p",
};

export interface ListTreeOptions {
  /** Adds `mtime=SECONDS.NANOSECONDS` to each line, as `list-tree --mtime` does. */
  mtime?: boolean;
}

/**
 * Renders a `MemoryTarget` tree in the format of the test corpus's
 * `list-tree` script. It prints one line per path, sorted by the path's raw
 * bytes. Each line has type, mode, owner, content hash, link target, device
 * numbers, hardlink group, optional mtime and xattrs sorted by name.
 */
export function renderListTree(target: MemoryTarget, options: ListTreeOptions = {}): string {
  const rows: Array<[string, MemoryNode]> = [];
  collect(target.root, "/", rows);
  // Byte strings hold one byte per UTF-16 unit, so default order is byte order.
  rows.sort((a, b) => compareStrings(a[0], b[0]));

  const links = new Map<MemoryNode, { count: number; first: string }>();
  for (const [path, node] of rows) {
    if (node.type === "directory") continue;
    const group = links.get(node);
    if (group === undefined) links.set(node, { count: 1, first: path });
    else group.count += 1;
  }

  const lines = rows.map(([path, node]) => renderLine(path, node, links.get(node), options));
  return lines.join("\n") + "\n";
}

function compareStrings(a: string, b: string): number {
  if (a < b) return -1;
  if (a > b) return 1;
  return 0;
}

function collect(node: MemoryNode, path: string, rows: Array<[string, MemoryNode]>): void {
  rows.push([path, node]);
  for (const [name, child] of node.children ?? []) collect(child, childPath(path, name), rows);
}

function renderLine(
  path: string,
  node: MemoryNode,
  group: { count: number; first: string } | undefined,
  options: ListTreeOptions,
): string {
  const fields = [
    escapeByteString(path),
    `type=${TYPE_LETTERS[node.type]}`,
    `mode=${node.mode.toString(8).padStart(4, "0")}`,
    `uid=${node.uid}`,
    `gid=${node.gid}`,
  ];

  if (node.type === "file") fields.push(`size=${node.size}`, `sha256=${node.sha256}`);
  if (node.type === "symlink") fields.push(`target=${escapeByteString(node.target ?? "")}`);
  if (node.type === "character-device" || node.type === "block-device") fields.push(`rdev=${node.major}:${node.minor}`);
  if (group !== undefined && group.count > 1) fields.push(`nlink=${group.count}`, `linkgroup=${escapeByteString(group.first)}`);
  if (options.mtime === true) fields.push(`mtime=${formatTime(node.mtime)}`);

  const names = [...node.xattrs.keys()].sort();
  for (const name of names) {
    fields.push(`xattr.${escapeByteString(name)}=${escapeBytes(node.xattrs.get(name) as Buffer)}`);
  }
  return fields.join(" ");
}

/** Formats a time as `list-tree` does: sign, seconds, dot, nine digits of nanoseconds. */
function formatTime(time: Timespec): string {
  const ns = toNanoseconds(time);
  const sign = ns < 0n ? "-" : "";
  const abs = ns < 0n ? -ns : ns;
  return `${sign}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, "0")}`;
}
