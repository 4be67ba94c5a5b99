#!/usr/bin/env python3
"""File-system workloads for the guest benchmark, timed inside the guest.

Run as root inside the booted image. Prints one JSON object on stdout:
{"python": ..., "kernel": ..., "workloads": {NAME: {"samples_ms": [...],
"median_ms": M, "cache": "warm" | "cold", "disk_reads": [...],
"disk_read_kib": [...]}}}. The disk fields count the read requests and
KiB that completed on /dev/vda during each timed run, from
/sys/block/vda/stat. They are missing when the root is not on vda.

Warm workloads run once untimed to fill the caches, then REPS timed times.
Cold workloads drop the guest page, dentry and inode caches before each
timed run; with virtio-fs the host's page cache stays warm.
"""

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time

# Scratch space on the root filesystem under test, never a tmpfs.
SCRATCH = "/var/tmp/layerdisk-bench"
STDLIB = os.path.dirname(os.__file__)
SMALL_FILE_COUNT = 1000
MEDIUM_FILE_COUNT = 100
MEDIUM_FILE_SIZE = 64 * 1024
SEQUENTIAL_SIZE = 16 * 1024 * 1024
RANDOM_READ_COUNT = 200
READ_THREADS = 4
MISSING_NAME = "layerdisk-no-such-file"


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as control:
        control.write("3\n")


def disk_read_counters():
    """Return (read requests, KiB read) completed on /dev/vda so far, or None without a vda."""
    try:
        with open("/sys/block/vda/stat") as stat:
            fields = stat.read().split()
    except FileNotFoundError:
        return None
    # Field 1 counts completed reads and field 3 sectors read, in 512-byte units.
    return int(fields[0]), int(fields[2]) // 2


def walk(root):
    """Return every path under root, directories included, without following symlinks."""
    paths = []
    for directory, subdirs, files in os.walk(root):
        paths.append(directory)
        paths.extend(os.path.join(directory, name) for name in files)
        paths.extend(os.path.join(directory, name) for name in subdirs if os.path.islink(os.path.join(directory, name)))
    return paths


def read_whole(path):
    with open(path, "rb") as handle:
        while handle.read(1 << 20):
            pass


class Inputs:
    """Path lists computed once, outside every timed region."""

    def __init__(self):
        self.usr_directories = [directory for directory, _, _ in os.walk("/usr")]
        self.usr_paths = walk("/usr")
        self.stdlib_sources = sorted(
            os.path.join(directory, name)
            for directory, _, files in os.walk(STDLIB)
            for name in files
            if name.endswith(".py")
        )
        regular = sorted(
            os.path.join(directory, name)
            for directory, _, files in os.walk("/usr")
            for name in files
            if os.path.isfile(os.path.join(directory, name)) and not os.path.islink(os.path.join(directory, name))
        )
        self.random_files = random.Random(20261204).choices(regular, k=RANDOM_READ_COUNT)


def stat_usr(inputs):
    for path in walk("/usr"):
        os.lstat(path)


def listdir_usr(inputs):
    for directory in inputs.usr_directories:
        os.listdir(directory)


def lstat_usr_paths(inputs):
    for path in inputs.usr_paths:
        os.lstat(path)


def read_stdlib(inputs):
    for path in inputs.stdlib_sources:
        read_whole(path)


def random_reads(inputs):
    for path in inputs.random_files:
        read_whole(path)


def negative_lookups(inputs):
    for directory in inputs.usr_directories:
        try:
            os.stat(os.path.join(directory, MISSING_NAME))
        except FileNotFoundError:
            continue
        raise RuntimeError(f"{directory}/{MISSING_NAME} exists")


def small_files(inputs):
    directory = os.path.join(SCRATCH, "small")
    os.makedirs(directory, exist_ok=True)
    payload = b"x" * 100
    for index in range(SMALL_FILE_COUNT):
        with open(os.path.join(directory, f"f{index}"), "wb") as handle:
            handle.write(payload)
    for index in range(SMALL_FILE_COUNT):
        os.rename(os.path.join(directory, f"f{index}"), os.path.join(directory, f"g{index}"))
    for index in range(SMALL_FILE_COUNT):
        os.unlink(os.path.join(directory, f"g{index}"))
    os.rmdir(directory)


def create_64k(inputs):
    directory = os.path.join(SCRATCH, "medium")
    os.makedirs(directory, exist_ok=True)
    payload = os.urandom(MEDIUM_FILE_SIZE)
    for index in range(MEDIUM_FILE_COUNT):
        with open(os.path.join(directory, f"m{index}"), "wb") as handle:
            handle.write(payload)


def cleanup_64k():
    directory = os.path.join(SCRATCH, "medium")
    for name in os.listdir(directory):
        os.unlink(os.path.join(directory, name))
    os.rmdir(directory)


def sequential_write(inputs):
    chunk = os.urandom(1 << 20)
    with open(os.path.join(SCRATCH, "sequential.bin"), "wb") as handle:
        for _ in range(SEQUENTIAL_SIZE // len(chunk)):
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())


def cleanup_sequential():
    os.unlink(os.path.join(SCRATCH, "sequential.bin"))


def threaded_read_stdlib(inputs):
    shares = [inputs.stdlib_sources[offset::READ_THREADS] for offset in range(READ_THREADS)]
    errors = []

    def reader(paths):
        try:
            for path in paths:
                read_whole(path)
        except OSError as error:
            errors.append(error)

    threads = [threading.Thread(target=reader, args=(share,)) for share in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def python_import(inputs):
    subprocess.run([sys.executable, "-c", "import json, email, http.client"], check=True)


# name -> (function, cache state, cleanup run after each timed run)
WORKLOADS = {
    "stat_usr": (stat_usr, "warm", None),
    "listdir_usr": (listdir_usr, "warm", None),
    "lstat_usr_paths": (lstat_usr_paths, "warm", None),
    "read_stdlib": (read_stdlib, "warm", None),
    "read_stdlib_cold": (read_stdlib, "cold", None),
    "random_reads": (random_reads, "warm", None),
    "negative_lookups": (negative_lookups, "warm", None),
    "small_files": (small_files, "warm", None),
    "create_64k": (create_64k, "warm", cleanup_64k),
    "sequential_write_fsync": (sequential_write, "warm", cleanup_sequential),
    "threaded_read_stdlib": (threaded_read_stdlib, "warm", None),
    "python_import_cold": (python_import, "cold", None),
}


def run_workload(name, inputs, repetitions):
    function, cache, cleanup = WORKLOADS[name]
    if cache == "warm":
        function(inputs)
        if cleanup:
            cleanup()
    samples = []
    reads = []
    for _ in range(repetitions):
        if cache == "cold":
            drop_caches()
        before = disk_read_counters()
        start = time.perf_counter_ns()
        function(inputs)
        samples.append((time.perf_counter_ns() - start) / 1e6)
        after = disk_read_counters()
        if before is not None and after is not None:
            reads.append((after[0] - before[0], after[1] - before[1]))
        if cleanup:
            cleanup()
    result = {"samples_ms": samples, "median_ms": statistics.median(samples), "cache": cache}
    if reads:
        result["disk_reads"] = [requests for requests, _ in reads]
        result["disk_read_kib"] = [kib for _, kib in reads]
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, default=3, help="timed runs per workload")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated workload names")
    arguments = parser.parse_args()
    names = [name for name in arguments.workloads.split(",") if name]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads: {', '.join(unknown)}; known: {', '.join(WORKLOADS)}")

    os.makedirs(SCRATCH, exist_ok=True)
    inputs = Inputs()
    results = {}
    for name in names:
        results[name] = run_workload(name, inputs, arguments.repetitions)
        print(f"fsbench: {name} median {results[name]['median_ms']:.1f} ms", file=sys.stderr, flush=True)
    os.rmdir(SCRATCH)
    report = {"python": platform.python_version(), "kernel": platform.release(), "workloads": results}
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
