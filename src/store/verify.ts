/**
 * `verify`: checks the store with the reference tools. Every layer file and
 * merged file goes through `qemu-img check`, and the filesystem at the top of every image's
 * chain through `e2fsck -fn` on a sparse raw copy made by `qemu-img convert`.
 */

import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";

import { runProgram } from "../process/run.js";
import { Store } from "./store.js";

export interface CheckOutcome {
  /** Subject of the check: a layer's chain ID, `merged KEY` or an image reference. */
  subject: string;
  file: string;
  tool: "qemu-img check" | "e2fsck -fn";
  ok: boolean;
  /** The tool's output when it reported a problem. */
  output?: string;
}

export interface VerifyResult {
  clean: boolean;
  checks: CheckOutcome[];
}

async function checkQcow2(subject: string, file: string): Promise<CheckOutcome> {
  // -U: a running VM may hold the write lock on an overlay's backing files.
  const result = await runProgram("qemu-img", ["check", "-U", "-f", "qcow2", file]);
  const outcome: CheckOutcome = { subject, file, tool: "qemu-img check", ok: result.exitCode === 0 };
  if (!outcome.ok) outcome.output = (result.stdout + result.stderr).trim();
  return outcome;
}

async function checkExt4(subject: string, topFile: string, scratch: string): Promise<CheckOutcome> {
  const raw = join(scratch, "flat.raw");
  const outcome: CheckOutcome = { subject, file: topFile, tool: "e2fsck -fn", ok: false };
  const convert = await runProgram("qemu-img", ["convert", "-U", "-f", "qcow2", "-O", "raw", topFile, raw]);
  if (convert.exitCode !== 0) {
    outcome.output = `qemu-img convert failed: ${convert.stderr.trim()}`;
    return outcome;
  }
  try {
    const fsck = await runProgram("e2fsck", ["-fn", raw]);
    outcome.ok = fsck.exitCode === 0;
    if (!outcome.ok) outcome.output = (fsck.stdout + fsck.stderr).trim();
    return outcome;
  } finally {
    await rm(raw, { force: true });
  }
}

export async function verifyStore(store: Store, onCheck?: (outcome: CheckOutcome) => void): Promise<VerifyResult> {
  const checks: CheckOutcome[] = [];
  const record = (outcome: CheckOutcome) => {
    checks.push(outcome);
    onCheck?.(outcome);
  };

  for (const layer of await store.listLayers()) {
    record(await checkQcow2(layer.chainId, store.layerFile(layer.parametersId, layer.chainId)));
  }
  for (const merged of await store.listMerged()) {
    record(await checkQcow2(`merged ${merged.key}`, store.mergedFile(merged.parametersId, merged.key)));
  }

  const scratch = await mkdtemp(join(store.root, "tmp", ".tmp-verify-"));
  try {
    for (const image of await store.listImages()) {
      const top = image.chainIds.at(-1);
      if (top === undefined) continue;
      record(await checkExt4(image.reference, store.layerFile(image.parametersId, top), scratch));
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return { clean: checks.every((check) => check.ok), checks };
}
