import { GuestError } from "./errors.js";
import { execTool } from "./exec.js";

/** One image of a backing chain as `qemu-img info --backing-chain` reports it. */
export interface ChainImage {
  filename: string;
  format: string;
}

/** Lists the chain that starts at `image`, top first, with each format as qemu-img reads it. */
export async function readBackingChain(image: string): Promise<ChainImage[]> {
  const { stdout } = await execTool("qemu-img", ["info", "--backing-chain", "--output=json", "-U", image]);
  const parsed = JSON.parse(stdout) as unknown;
  const list = Array.isArray(parsed) ? parsed : [parsed];
  return list.map((entry: { filename?: unknown; format?: unknown }) => {
    if (typeof entry.filename !== "string" || typeof entry.format !== "string") {
      throw new GuestError("ERR_GUEST_SETUP_FAILED", `qemu-img info ${image} returned an entry without filename or format`, { file: image });
    }
    return { filename: entry.filename, format: entry.format };
  });
}

const SUPPORTED_FORMATS = new Set(["qcow2", "raw"]);

/**
 * Builds `-blockdev` options that open every image of `chain` with its
 * format pinned, so QEMU never probes a format. Only the top node is
 * writable. Nodes are listed bottom first, because QEMU resolves a
 * `backing` reference only to a node that already exists. Returns the
 * arguments and the node name for the device.
 */
export function blockdevArgs(chain: readonly ChainImage[], readOnly: boolean): { args: string[]; nodeName: string } {
  const nodes: string[][] = [];
  chain.forEach((image, depth) => {
    if (!SUPPORTED_FORMATS.has(image.format)) {
      throw new GuestError("ERR_GUEST_INVALID_ARG", `unsupported disk format ${image.format} for ${image.filename}; use qcow2 or raw`, { file: image.filename });
    }
    const nodeReadOnly = readOnly || depth > 0;
    const fileNode = { driver: "file", "node-name": `file${depth}`, filename: image.filename, "read-only": nodeReadOnly };
    const formatNode: Record<string, unknown> = { driver: image.format, "node-name": `disk${depth}`, file: `file${depth}`, "read-only": nodeReadOnly };
    if (image.format === "qcow2") formatNode.backing = depth + 1 < chain.length ? `disk${depth + 1}` : null;
    nodes.push(["-blockdev", JSON.stringify(fileNode), "-blockdev", JSON.stringify(formatNode)]);
  });
  return { args: nodes.reverse().flat(), nodeName: "disk0" };
}
