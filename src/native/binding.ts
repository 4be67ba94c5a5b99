/**
 * Loads the native addon (native/layerdisk.node) and types its exports.
 *
 * Callers use the wrappers in src/qcow2 and src/ext4, which convert native
 * errors into `LayerdiskError` subclasses; nothing else imports this module.
 */

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { LayerdiskError, fromNativeError } from "../errors.js";

/** Opaque reference to a native object; freed by the garbage collector. */
export type NativeHandle = { readonly __nativeHandle: unique symbol };

export interface NativeBinding {
  version(): string;
  panicForTest(onThreadPool: boolean): Promise<never>;
  [name: string]: unknown;
}

function findAddon(): string {
  // Works from src/native (tests) and from dist/native (the built package).
  const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  const addon = join(packageRoot, "native", "layerdisk.node");
  if (!existsSync(addon)) {
    throw new LayerdiskError(
      "ERR_NATIVE_MISSING",
      `native addon not found at ${addon}; run "npm install" or "node scripts/build-native.mjs" to build it`,
      { file: addon },
    );
  }
  return addon;
}

let binding: NativeBinding | undefined;

export function native(): NativeBinding {
  binding ??= createRequire(import.meta.url)(findAddon()) as NativeBinding;
  return binding;
}

/** Calls a native function and rethrows its errors as `LayerdiskError` subclasses. */
export async function callNative<T>(call: () => T | Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw fromNativeError(error);
  }
}

/** Synchronous variant of `callNative`, for calls that return at once. */
export function callNativeSync<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw fromNativeError(error);
  }
}
