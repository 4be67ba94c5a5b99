/**
 * Locks between processes (flock on a file in the store's `locks/` folder,
 * exclusive or shared) and, for exclusive locks, between callers in one
 * process (a promise queue per name).
 *
 * The kernel releases a flock when its holder dies, SIGKILL included, so a
 * crashed conversion never blocks later ones.
 */

import { callNative, native, type NativeHandle } from "../native/binding.js";

interface LockBinding {
  lockFile(path: string, shared: boolean, wait: boolean): Promise<NativeHandle | null>;
  unlockFile(handle: NativeHandle): void;
}

const binding = (): LockBinding => native() as unknown as LockBinding;

/** Tail of the queue of callers waiting for each lock file in this process. */
const queues = new Map<string, Promise<void>>();

/**
 * Runs `task` while holding the lock at `lockPath`, waiting for other
 * holders in this process and in others.
 */
export async function withFileLock<T>(lockPath: string, task: () => Promise<T>): Promise<T> {
  const previous = queues.get(lockPath) ?? Promise.resolve();
  let releaseQueue!: () => void;
  const current = new Promise<void>((resolve) => (releaseQueue = resolve));
  const tail = previous.then(() => current);
  queues.set(lockPath, tail);

  await previous;
  try {
    const handle = await callNative(() => binding().lockFile(lockPath, false, true));
    if (handle === null) throw new Error(`lockFile(${lockPath}) returned no handle while waiting`);
    try {
      return await task();
    } finally {
      binding().unlockFile(handle);
    }
  } finally {
    releaseQueue();
    if (queues.get(lockPath) === tail) queues.delete(lockPath);
  }
}

/**
 * Runs `task` holding a shared lock at `lockPath`: any number of shared
 * holders run together, but none while a `withFileLock` holder runs.
 */
export async function withSharedFileLock<T>(lockPath: string, task: () => Promise<T>): Promise<T> {
  const handle = await callNative(() => binding().lockFile(lockPath, true, true));
  if (handle === null) throw new Error(`lockFile(${lockPath}) returned no handle while waiting`);
  try {
    return await task();
  } finally {
    binding().unlockFile(handle);
  }
}

/** Returns whether any process holds the lock at `lockPath` right now. */
export async function isFileLocked(lockPath: string): Promise<boolean> {
  const handle = await callNative(() => binding().lockFile(lockPath, false, false));
  if (handle === null) return true;
  binding().unlockFile(handle);
  return false;
}
