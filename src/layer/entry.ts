import type { DataChunk, TarEntry } from "../tar/entry.js";
import type { Timespec } from "../tar/time.js";
import type { NodeAttributes } from "./target.js";
import { entryComponents } from "./path.js";

/**
 * OCI image-spec, layer.md "Whiteouts": a file named `.wh.NAME` removes
 * NAME as the lower layers left it, and `.wh..wh..opq` in a directory hides
 * every child the lower layers gave that directory. Other `.wh..wh.` names
 * are AUFS bookkeeping and carry nothing to apply.
 */
const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_NAME = ".wh..wh..opq";
const AUFS_META_PREFIX = ".wh..wh.";

interface EntryBase {
  /** Clean path components relative to the image root; empty for the root itself. */
  components: string[];
  /** The tar name, as a byte string, for error messages. */
  name: string;
}

interface NodeBase extends EntryBase {
  attributes: NodeAttributes;
  xattrs: Map<string, Buffer>;
}

export interface FileEntry extends NodeBase {
  kind: "file";
  size: number;
  sparse: boolean;
  data(): AsyncIterable<DataChunk>;
}
export interface DirectoryEntry extends NodeBase {
  kind: "directory";
}
export interface SymlinkEntry extends NodeBase {
  kind: "symlink";
  target: string;
}
export interface HardlinkEntry extends EntryBase {
  kind: "hardlink";
  /** Components of the link target, cleaned like `components`. */
  targetComponents: string[];
}
export interface DeviceEntry extends NodeBase {
  kind: "character-device" | "block-device" | "fifo";
  major: number;
  minor: number;
}
/** `.wh.NAME`: `components` names the path to remove, not the marker. */
export interface WhiteoutEntry extends EntryBase {
  kind: "whiteout";
}
/** `.wh..wh..opq`: `components` names the opaque directory. */
export interface OpaqueEntry extends EntryBase {
  kind: "opaque";
}
/** An entry with nothing to apply, such as AUFS metadata. */
export interface IgnoredEntry extends EntryBase {
  kind: "ignored";
}

export type LayerEntry =
  | FileEntry
  | DirectoryEntry
  | SymlinkEntry
  | HardlinkEntry
  | DeviceEntry
  | WhiteoutEntry
  | OpaqueEntry
  | IgnoredEntry;

/** Linux ignores a symlink's own permission bits and always reports 0777. */
const SYMLINK_MODE = 0o777;

/** Converts a tar entry into the change it makes to the layer's tree. */
export function toLayerEntry(entry: TarEntry): LayerEntry {
  const components = entryComponents(entry.name);
  const name = entry.name;
  const base = components.at(-1) ?? "";

  if (base.startsWith(WHITEOUT_PREFIX)) {
    const parent = components.slice(0, -1);
    if (base === OPAQUE_NAME) return { kind: "opaque", components: parent, name };
    if (base.startsWith(AUFS_META_PREFIX)) return { kind: "ignored", components, name };
    return { kind: "whiteout", components: [...parent, base.slice(WHITEOUT_PREFIX.length)], name };
  }

  const attributes = attributesOf(entry);
  const xattrs = entry.xattrs;
  switch (entry.type) {
    case "file":
      return { kind: "file", components, name, attributes, xattrs, size: entry.size, sparse: entry.sparse === true, data: entry.data };
    case "directory":
      return { kind: "directory", components, name, attributes, xattrs };
    case "symlink":
      return {
        kind: "symlink",
        components,
        name,
        attributes: { ...attributes, mode: SYMLINK_MODE },
        xattrs,
        target: entry.linkname ?? "",
      };
    case "hardlink":
      return { kind: "hardlink", components, name, targetComponents: entryComponents(entry.linkname ?? "") };
    case "character-device":
    case "block-device":
    case "fifo":
      return { kind: entry.type, components, name, attributes, xattrs, major: entry.devmajor, minor: entry.devminor };
  }
}

function attributesOf(entry: TarEntry): NodeAttributes {
  const attributes: NodeAttributes = { mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime: entry.mtime };
  const atime: Timespec | undefined = entry.atime;
  if (atime !== undefined) attributes.atime = atime;
  return attributes;
}
