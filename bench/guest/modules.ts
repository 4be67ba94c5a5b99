import { readFile, readdir } from "node:fs/promises";
import path from "node:path";

import { GuestError } from "./errors.js";

/**
 * Kernel modules the guest needs: the virtio PCI transport, virtio-blk, ext4
 * and virtiofs. Their dependencies are added from each module's own
 * `.modinfo`, because Debian's kernel package ships no modules.dep.
 */
export const ROOT_MODULES = ["virtio_pci", "virtio_blk", "ext4", "virtiofs"] as const;

/**
 * Modules that satisfy a `softdep` alias. Without modules.alias the alias
 * cannot be looked up, and ext4 and jbd2 both ask for "crypto-crc32c" so that
 * metadata_csum works. The generic C version is used because the
 * SSE4.2 one needs a CPU feature that QEMU's default TCG CPU lacks.
 */
const SOFTDEP_ALIASES: Readonly<Record<string, string>> = {
  "crypto-crc32c": "crc32c_generic",
  crc32c: "crc32c_generic",
};

/** Module names use `_` and `-` interchangeably; the kernel treats them as equal. */
function normalizeName(name: string): string {
  return name.replaceAll("-", "_");
}

/** Maps every module name under `moduleRoot` to its `.ko` file. */
export async function indexModules(moduleRoot: string): Promise<Map<string, string>> {
  const index = new Map<string, string>();
  const entries = await readdir(moduleRoot, { recursive: true, withFileTypes: true });
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.endsWith(".ko")) continue;
    index.set(normalizeName(entry.name.slice(0, -3)), path.join(entry.parentPath, entry.name));
  }
  return index;
}

/** Reads one `key=value` string of a module's `.modinfo` section. */
function modinfoValue(contents: Buffer, key: string): string | undefined {
  const needle = Buffer.from(`\0${key}=`, "latin1");
  const start = contents.indexOf(needle);
  if (start < 0) return undefined;
  const valueStart = start + needle.length;
  const end = contents.indexOf(0, valueStart);
  return contents.subarray(valueStart, end < 0 ? undefined : end).toString("latin1");
}

/** Returns the modules that must be loaded before `file`: hard dependencies and `softdep pre:` entries. */
async function prerequisites(file: string): Promise<string[]> {
  const contents = await readFile(file);
  const depends = (modinfoValue(contents, "depends") ?? "").split(",").filter((name) => name !== "");
  const softdep = modinfoValue(contents, "softdep") ?? "";
  const pre = /pre:\s*([^:]*?)(?:\s+post:|$)/.exec(softdep)?.[1]?.trim().split(/\s+/) ?? [];
  const softNames = pre.filter((name) => name !== "").map((name) => SOFTDEP_ALIASES[name] ?? name);
  return [...softNames, ...depends].map(normalizeName);
}

/**
 * Returns the load order for `roots` and everything they depend on, each
 * module after its prerequisites, as `{ name, file }` pairs.
 */
export async function resolveModuleOrder(
  moduleRoot: string,
  roots: readonly string[] = ROOT_MODULES,
): Promise<Array<{ name: string; file: string }>> {
  const index = await indexModules(moduleRoot);
  const order: Array<{ name: string; file: string }> = [];
  const visited = new Set<string>();

  const visit = async (name: string, neededBy: string): Promise<void> => {
    if (visited.has(name)) return;
    visited.add(name);
    const file = index.get(name);
    if (file === undefined) {
      throw new GuestError("ERR_GUEST_MODULE_NOT_FOUND", `kernel module ${name} (needed by ${neededBy}) not found under ${moduleRoot}`, { path: name });
    }
    for (const prerequisite of await prerequisites(file)) await visit(prerequisite, name);
    order.push({ name, file });
  };

  for (const root of roots) await visit(normalizeName(root), "the guest init");
  return order;
}
