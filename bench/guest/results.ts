import type { AcceleratorChoice } from "./accel.js";
import type { ChainRecord } from "./layerdisk-chain.js";
import type { WorkloadName } from "./workloads/index.js";

/** Timings of one workload as fsbench.py reports them, in milliseconds. */
export interface WorkloadResult {
  samplesMs: number[];
  medianMs: number;
  cache: "warm" | "cold";
  /** Read requests completed on the guest's /dev/vda during each timed run; missing for virtio-fs roots. */
  diskReads?: number[];
  /** KiB read from /dev/vda during each timed run. */
  diskReadKiB?: number[];
}

/** One way of giving the guest its root file system. */
export type ModeId = "virtiofs-auto" | "virtiofs-always" | "qcow2-chain" | "raw-ext4";

export interface ModeResult {
  id: ModeId;
  label: string;
  /** Description of the root device or share, for the record. */
  root: string;
  /** Median of bootSamplesMs. */
  bootMs: number;
  /** Host-measured milliseconds from starting QEMU until the command started, one per boot. */
  bootSamplesMs: number[];
  workloads: Partial<Record<WorkloadName, WorkloadResult>>;
}

/** Everything one run of the guest benchmark measured, as stored in JSON. */
export interface GuestBenchResult {
  suite: "guest";
  /** ISO 8601 time the run started. */
  date: string;
  quick: boolean;
  /** Timed runs of each workload per boot. */
  repetitions: number;
  /** Boots of each mode; samples of all boots are pooled. */
  rounds: number;
  command: string;
  machine: {
    cpuModel: string;
    hostCpus: number;
    hostMemoryGiB: number;
    hostKernel: string;
    qemu: string;
    /** One-minute host load average when the run started and ended. */
    loadAverage: { start: number; end: number };
  };
  accelerator: AcceleratorChoice;
  guest: {
    kernelPackage: string;
    python: string;
    cpus: number;
    memoryMiB: number;
  };
  image: string;
  /** The chain under the qcow2 chain mode's overlay; missing in results from before it was recorded. */
  chain?: ChainRecord;
  modes: ModeResult[];
}
