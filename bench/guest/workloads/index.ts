import { readFile } from "node:fs/promises";

/** Workload names that fsbench.py accepts, in the order it runs them. */
export const WORKLOAD_NAMES = [
  "stat_usr",
  "listdir_usr",
  "lstat_usr_paths",
  "read_stdlib",
  "read_stdlib_cold",
  "random_reads",
  "negative_lookups",
  "small_files",
  "create_64k",
  "sequential_write_fsync",
  "threaded_read_stdlib",
  "python_import_cold",
] as const;

export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

/** One-line descriptions for tables and charts. */
export const WORKLOAD_DESCRIPTIONS: Readonly<Record<WorkloadName, string>> = {
  stat_usr: "walk /usr and lstat every path",
  listdir_usr: "list every /usr directory (the walk without lstat)",
  lstat_usr_paths: "lstat every /usr path from a list (the walk without listing)",
  read_stdlib: "read every .py file of the stdlib (warm)",
  read_stdlib_cold: "read every .py file of the stdlib after drop_caches",
  random_reads: "read 200 random files under /usr",
  negative_lookups: "stat a missing name in every /usr directory",
  small_files: "create, rename, delete 1,000 small files",
  create_64k: "create 100 files of 64 KiB",
  sequential_write_fsync: "write 16 MiB sequentially + fsync",
  threaded_read_stdlib: "read the stdlib .py files from 4 threads",
  python_import_cold: "python3 -c 'import json, email, http.client' after drop_caches",
};

/** Returns the guest-side workload script. */
export function fsbenchScript(): Promise<string> {
  return readFile(new URL("./fsbench.py", import.meta.url), "utf8");
}
