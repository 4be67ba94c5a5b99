import { LayerError, LayerdiskError } from "../errors.js";
import type { TarEntry } from "../tar/entry.js";
import type { Timespec } from "../tar/time.js";
import {
  toLayerEntry,
  type DeviceEntry,
  type DirectoryEntry,
  type FileEntry,
  type HardlinkEntry,
  type LayerEntry,
  type SymlinkEntry,
} from "./entry.js";
import { childPath, joinPath } from "./path.js";
import { ensureDirectories, resolveInside } from "./resolve.js";
import type { LayerTarget } from "./target.js";

/** Counts of what one layer changed. */
export interface ApplyStats {
  entries: number;
  whiteouts: number;
  /** File data bytes written, holes excluded. */
  bytes: number;
}

/**
 * Applies one layer's tar entries on top of the tree in `target`.
 *
 * Entries apply in tar order, and a later entry for a path replaces an
 * earlier one. Whiteouts and opaque markers hide only what lower layers
 * left, wherever they appear in the tar (OCI image-spec, layer.md,
 * "Whiteouts"). Directory times are set after the last entry, because
 * writing a directory's children would otherwise change them.
 *
 * If this rejects, the target contains a partly applied layer and should be
 * discarded.
 */
export async function applyLayer(target: LayerTarget, entries: AsyncIterable<TarEntry>): Promise<ApplyStats> {
  const application = new LayerApplication(target);
  for await (const entry of entries) {
    await application.apply(toLayerEntry(entry));
  }
  application.finish();
  return application.stats;
}

/** State of one layer being applied: what it created, and times to set at the end. */
class LayerApplication {
  readonly stats: ApplyStats = { entries: 0, whiteouts: 0, bytes: 0 };

  /** Paths this layer created; whiteouts and opaque markers leave them alone. */
  private readonly created = new Set<string>();
  /** Directories that contain a path this layer created. */
  private readonly createdAncestors = new Set<string>();
  private readonly directoryTimes = new Map<string, { mtime: Timespec; atime?: Timespec }>();

  constructor(private readonly target: LayerTarget) {}

  async apply(entry: LayerEntry): Promise<void> {
    this.stats.entries += 1;
    try {
      await this.applyEntry(entry);
    } catch (error) {
      if (error instanceof LayerdiskError) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new LayerError("ERR_LAYER_APPLY", `Failed to apply ${entry.name}: ${message}`, { path: entry.name, cause: error });
    }
  }

  /** Sets the deferred directory times, deepest paths first. */
  finish(): void {
    const paths = [...this.directoryTimes.keys()].reverse();
    for (const path of paths) {
      if (this.target.lstat(path)?.type !== "directory") continue;
      this.target.setAttributes(path, this.directoryTimes.get(path) as { mtime: Timespec });
    }
  }

  private async applyEntry(entry: LayerEntry): Promise<void> {
    switch (entry.kind) {
      case "ignored":
        return;
      case "whiteout":
        this.stats.whiteouts += 1;
        return this.applyWhiteout(entry.components, entry.name);
      case "opaque":
        this.stats.whiteouts += 1;
        return this.applyOpaque(entry.components, entry.name);
      case "directory":
        return this.applyDirectory(entry);
      case "file":
        return this.applyFile(entry);
      case "symlink":
        return this.applySymlink(entry);
      case "hardlink":
        return this.applyHardlink(entry);
      case "character-device":
      case "block-device":
      case "fifo":
        return this.applyDevice(entry);
    }
  }

  private applyWhiteout(components: string[], name: string): void {
    const base = components.at(-1);
    if (base === undefined || base === "") return;
    const parent = resolveInside(this.target, components.slice(0, -1), name);
    if (this.target.lstat(joinPath(parent))?.type !== "directory") return;
    this.hideLower(childPath(joinPath(parent), base));
  }

  private applyOpaque(components: string[], name: string): void {
    const dir = joinPath(resolveInside(this.target, components, name));
    if (this.target.lstat(dir)?.type !== "directory") return;
    this.hideLowerChildren(dir);
  }

  /** Removes what lower layers left at `path`, keeping what this layer created. */
  private hideLower(path: string): void {
    const stat = this.target.lstat(path);
    if (stat === undefined) return;
    if (this.created.has(path) || this.createdAncestors.has(path)) {
      if (stat.type === "directory") this.hideLowerChildren(path);
      return;
    }
    this.target.remove(path);
  }

  private hideLowerChildren(dir: string): void {
    for (const name of this.target.readdir(dir)) this.hideLower(childPath(dir, name));
  }

  private applyDirectory(entry: DirectoryEntry): void {
    const path = this.prepare(entry.components, entry.name, true);
    const existing = this.target.lstat(path);

    if (existing?.type === "directory") {
      // A directory entry over a directory keeps its children and replaces its metadata.
      this.target.setAttributes(path, entry.attributes);
      this.target.setXattrs(path, entry.xattrs);
    } else {
      if (existing !== undefined) this.target.remove(path);
      this.target.mkdir(path, entry.attributes);
      if (entry.xattrs.size > 0) this.target.setXattrs(path, entry.xattrs);
    }

    const times: { mtime: Timespec; atime?: Timespec } = { mtime: entry.attributes.mtime };
    if (entry.attributes.atime !== undefined) times.atime = entry.attributes.atime;
    this.directoryTimes.delete(path);
    this.directoryTimes.set(path, times);
    this.markCreated(path);
  }

  private async applyFile(entry: FileEntry): Promise<void> {
    const path = this.prepare(entry.components, entry.name, false);
    const writer = this.target.createFile(path, entry.attributes, entry.size);
    for await (const chunk of entry.data()) {
      if (chunk.offset + chunk.data.length > entry.size) {
        throw new LayerError("ERR_LAYER_FILE_SIZE", `Data of ${entry.name} goes past its size ${entry.size}.`, { path: entry.name });
      }
      writer.write(chunk.offset, chunk.data);
      this.stats.bytes += chunk.data.length;
    }
    writer.close();
    this.finishNode(path, entry.xattrs);
  }

  private applySymlink(entry: SymlinkEntry): void {
    const path = this.prepare(entry.components, entry.name, false);
    this.target.symlink(path, entry.target, entry.attributes);
    this.finishNode(path, entry.xattrs);
  }

  private applyDevice(entry: DeviceEntry): void {
    const path = this.prepare(entry.components, entry.name, false);
    this.target.mknod(path, entry.kind, entry.attributes, entry.major, entry.minor);
    this.finishNode(path, entry.xattrs);
  }

  /**
   * Links to a file already in the tree, from this layer or a lower one. The
   * link shares the target's inode, so the link entry's own metadata is not
   * applied.
   */
  private applyHardlink(entry: HardlinkEntry): void {
    const base = entry.targetComponents.at(-1);
    const targetParent = resolveInside(this.target, entry.targetComponents.slice(0, -1), entry.name);
    const existing = base === undefined ? "/" : childPath(joinPath(targetParent), base);
    const stat = this.target.lstat(existing);
    if (stat === undefined) {
      throw new LayerError("ERR_LAYER_LINK_TARGET_MISSING", `Hardlink ${entry.name} points to ${existing}, which does not exist.`, {
        path: entry.name,
      });
    }
    if (stat.type === "directory") {
      throw new LayerError("ERR_LAYER_LINK_TO_DIRECTORY", `Hardlink ${entry.name} points to directory ${existing}.`, { path: entry.name });
    }

    const path = this.prepare(entry.components, entry.name, false, existing);
    if (path === existing) return;
    this.target.link(path, existing);
    this.markCreated(path);
  }

  /**
   * Resolves an entry's path, creates its missing parents and removes what
   * is there unless it is a directory that `keepDirectory` allows to stay.
   */
  private prepare(components: string[], name: string, keepDirectory: boolean, keepPath?: string): string {
    const base = components.at(-1);
    if (base === undefined) {
      if (keepDirectory) return "/";
      throw new LayerError("ERR_LAYER_INVALID_ROOT", `Entry ${name} would replace the root directory with a non-directory.`, {
        path: name,
      });
    }

    const parent = resolveInside(this.target, components.slice(0, -1), name);
    ensureDirectories(this.target, parent, name, (created) => this.markCreated(created));
    const path = childPath(joinPath(parent), base);

    const existing = this.target.lstat(path);
    const keep = (keepDirectory && existing?.type === "directory") || path === keepPath;
    if (existing !== undefined && !keep) this.target.remove(path);
    return path;
  }

  private finishNode(path: string, xattrs: Map<string, Buffer>): void {
    if (xattrs.size > 0) this.target.setXattrs(path, xattrs);
    this.markCreated(path);
  }

  private markCreated(path: string): void {
    this.created.add(path);
    for (let slash = path.lastIndexOf("/"); slash > 0; slash = path.lastIndexOf("/", slash - 1)) {
      this.createdAncestors.add(path.slice(0, slash));
    }
    this.createdAncestors.add("/");
  }
}
