#!/usr/bin/env node
/**
 * The `layerdisk` command. Exit statuses:
 *
 * - 0: success;
 * - 1: the operation failed (the message names the error `code`);
 * - 2: invalid command line;
 * - 3: `verify` found a problem;
 * - 130: interrupted (SIGINT).
 */

import { parseArgs } from "node:util";

import { LayerdiskError } from "../errors.js";
import { Store } from "../store/store.js";
import { defaultStoreRoot } from "../store/location.js";
import { UsageError } from "./args.js";
import { createCommand } from "./create-command.js";
import { exportCommand } from "./export-command.js";
import { pullCommand } from "./pull-command.js";
import { inspectCommand, listCommand, pruneCommand, removeCommand, verifyCommand } from "./store-commands.js";

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;

const USAGE = `Usage: layerdisk COMMAND [OPTIONS]

Commands:
  create REF     convert an image into a qcow2 chain and make a writable overlay
  pull REF       download a registry image into the store without converting it
  export REF OUT write one standalone disk file (no backing file) from a chain
  ls             list images, layer files and overlays in the store
  inspect REF    show an image's record and chain
  rm REF|OVERLAY...  remove image records (their layers stay until prune), or delete overlays by id or disk path
  prune          remove layers, blobs and overlay records nothing references
  verify         check every layer with qemu-img check and every image with e2fsck -fn

REF is oci-layout:PATH[:TAG|@DIGEST], oci-archive:PATH, docker-archive:PATH,
a path to any of these, or a registry reference such as alpine,
localhost:5000/repo:tag or docker://REF. An existing path wins over a
registry reference. For export, REF is a qcow2 file (such as an overlay) or
an image in the store.

Options for every command:
  --store DIR    store folder (default: $LAYERDISK_STORE, $XDG_CACHE_HOME/layerdisk or ~/.cache/layerdisk)
  --json         print one JSON document instead of text
  -h, --help     print this help

Options for create:
  --platform OS/ARCH[/VARIANT]  platform to pick from an image index (default: this host's)
  --fs-size SIZE                ext4 filesystem size, 8M to 1T, such as 64G (default 64G; sparse)
  --cluster-size SIZE           qcow2 cluster size, 512 to 2M (default 64K)
  --disk PATH                   where to write the overlay (default: in the store)
  --max-depth N|PRESET          files the VMM opens at most, overlay included; upper layers
                                are merged beyond it. Presets: cloud-hypervisor, crosvm (10),
                                qemu, libkrun (no limit). Default: no limit

Options for create and pull:
  --insecure-registry HOST[:PORT]  reach this registry over plain HTTP (repeatable;
                                   loopback registries always are)
  --https-registry HOST[:PORT]     use HTTPS for this loopback registry (repeatable)
  --ca-file FILE                   also trust this PEM CA certificate for registries (repeatable)

Options for export:
  --format raw|qcow2            raw: sparse raw file (default); qcow2: qcow2 without backing file

Exit status: 0 success, 1 failure, 2 invalid command line, 3 verify found a problem, 130 interrupted.
`;

const OPTIONS = {
  store: { type: "string" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
  platform: { type: "string" },
  "fs-size": { type: "string" },
  "cluster-size": { type: "string" },
  disk: { type: "string" },
  "max-depth": { type: "string" },
  "insecure-registry": { type: "string", multiple: true },
  "https-registry": { type: "string", multiple: true },
  "ca-file": { type: "string", multiple: true },
  format: { type: "string" },
} as const;

async function run(argv: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  const [command, ...operands] = positionals;
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(USAGE);
    return command === undefined && !values.help ? EXIT_USAGE : 0;
  }

  const store = await new Store(values.store ?? defaultStoreRoot()).open();
  const output = { json: values.json, stdout: process.stdout };
  const requireOperands = () => {
    if (operands.length === 0) throw new UsageError(`"layerdisk ${command}" needs an image reference`);
  };

  switch (command) {
    case "create":
      requireOperands();
      if (operands.length > 1) throw new UsageError(`"layerdisk create" takes one image reference, got ${operands.length}`);
      return createCommand(store, operands[0]!, values, output, signal);
    case "pull":
      requireOperands();
      if (operands.length > 1) throw new UsageError(`"layerdisk pull" takes one image reference, got ${operands.length}`);
      return pullCommand(store, operands[0]!, values, output, signal);
    case "export":
      requireOperands();
      return exportCommand(store, operands, values, output);
    case "ls":
      return listCommand(store, output);
    case "inspect":
      requireOperands();
      return inspectCommand(store, operands, output);
    case "rm":
      requireOperands();
      return removeCommand(store, operands, output);
    case "prune":
      return pruneCommand(store, output);
    case "verify":
      return verifyCommand(store, output);
    default:
      throw new UsageError(`unknown command "${command}"; run "layerdisk --help" for the list`);
  }
}

/** Returns the string `code` of an error, if it has one (a DOMException's `code` is a number). */
function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** Library errors about an option's value are command-line mistakes here. */
const USAGE_CODES = new Set(["ERR_INVALID_ARG_VALUE", "ERR_INVALID_ARG_TYPE"]);

function report(error: unknown, json: boolean, interrupted: boolean): number {
  if (interrupted || (error as Error | null)?.name === "AbortError") {
    process.stderr.write("layerdisk: interrupted\n");
    return EXIT_INTERRUPTED;
  }
  const rawCode = errorCode(error);
  const isUsage = error instanceof UsageError || rawCode?.startsWith("ERR_PARSE_ARGS") === true || USAGE_CODES.has(rawCode ?? "");
  const code = rawCode ?? "ERR_UNEXPECTED";
  const message = error instanceof Error ? error.message : String(error);
  if (json) {
    const details = error instanceof LayerdiskError ? { file: error.file, path: error.path, digest: error.digest } : {};
    process.stdout.write(`${JSON.stringify({ error: { code, message, ...details } })}\n`);
  }
  process.stderr.write(`layerdisk: ${message} [${code}]\n`);
  return isUsage ? EXIT_USAGE : EXIT_FAILURE;
}

const controller = new AbortController();
process.once("SIGINT", () => controller.abort());
// A reader that stops early (`layerdisk ls | head`) is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(0);
  throw error;
});
const argv = process.argv.slice(2);
run(argv, controller.signal).then(
  (status) => {
    process.exitCode = controller.signal.aborted ? EXIT_INTERRUPTED : status;
  },
  (error: unknown) => {
    process.exitCode = report(error, argv.includes("--json"), controller.signal.aborted);
  },
);
