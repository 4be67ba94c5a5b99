/**
 * QCOW2 backing chains: create images and overlays, read and write at byte
 * offsets, flatten, and report what `qemu-img info --backing-chain` would.
 *
 * Every call that touches files runs on the libuv thread pool, so the event
 * loop stays free. Errors are `Qcow2Error`s with a stable `code`, the `file`
 * at fault and, for corruption, the byte `offset` inside it.
 */

import { callNative, native, type NativeHandle } from "../native/binding.js";

/** Format of a backing file or a flatten output. */
export type ImageFormat = "qcow2" | "raw";

export interface CreateImageOptions {
  /** Virtual size in bytes, a multiple of 512. Defaults to the backing file's size. */
  virtualSize?: number;
  /** Cluster size in bytes: a power of two from 512 to 2 MiB. Default 64 KiB. */
  clusterSize?: number;
  /** Backing file, recorded relative to the new image's directory with its format. */
  backing?: { path: string; format?: ImageFormat };
}

export interface OpenChainOptions {
  /** Open the top image for writing; backing files stay read-only. Default false. */
  writable?: boolean;
  /** Directory that every backing file must resolve into. Default: the top image's directory. */
  allowedDir?: string;
  /** Accept backing files in any directory. Protocol and `json:` names stay rejected. */
  allowAnyDir?: boolean;
  /** Maximum number of images in the chain, the top one included. Default 64. */
  maxDepth?: number;
}

export interface FlattenOptions {
  /** Output format. Default "qcow2". */
  format?: ImageFormat;
  /**
   * Number of top layers to merge (qcow2 only). Default: all, giving a
   * standalone image; fewer keeps the next layer as the backing file.
   */
  layers?: number;
  /** Cluster size of a qcow2 output. Default: the top image's. */
  clusterSize?: number;
}

/** One file of a chain, with the fields of `qemu-img info --output=json` in camelCase. */
export interface ImageInfo {
  filename: string;
  format: ImageFormat;
  virtualSize: number;
  /** Bytes allocated on disk. */
  actualSize: number;
  /** Null for raw files. */
  clusterSize: number | null;
  /** Backing file name as stored in the header. */
  backingFilename: string | null;
  /** Backing file path resolved against the image's directory. */
  fullBackingFilename: string | null;
  /** Backing format recorded in the header extension. */
  backingFilenameFormat: ImageFormat | null;
  /** "1.1" for version 3, "0.10" for version 2; null for raw files. */
  compat: "1.1" | "0.10" | null;
  refcountBits: number | null;
  lazyRefcounts: boolean;
}

interface Qcow2Binding {
  qcow2Create(
    path: string,
    virtualSize: number | null,
    clusterSize: number | null,
    backingPath: string | null,
    backingFormat: string | null,
  ): Promise<void>;
  qcow2Open(
    path: string,
    writable: boolean,
    allowedDir: string | null,
    anyDir: boolean,
    maxDepth: number | null,
  ): Promise<NativeHandle>;
  qcow2Read(handle: NativeHandle, offset: number, length: number): Promise<Buffer>;
  qcow2Write(handle: NativeHandle, offset: number, data: Buffer): Promise<void>;
  qcow2WriteZeroes(handle: NativeHandle, offset: number, length: number): Promise<void>;
  qcow2Flush(handle: NativeHandle): Promise<void>;
  qcow2Close(handle: NativeHandle): Promise<void>;
  qcow2Info(handle: NativeHandle): Promise<ImageInfo[]>;
  qcow2Flatten(
    handle: NativeHandle,
    destination: string,
    format: ImageFormat,
    layers: number | null,
    clusterSize: number | null,
  ): Promise<void>;
  qcow2ImportRaw(handle: NativeHandle, source: string): Promise<void>;
  qcow2BenchReads(handle: NativeHandle, count: number, size: number, step: number): Promise<number>;
}

function binding(): Qcow2Binding {
  return native() as unknown as Qcow2Binding;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** Creates a version 3 qcow2 image at `path`, replacing any file there. */
export async function createImage(path: string, options: CreateImageOptions = {}): Promise<void> {
  const backing = options.backing;
  await callNative(() =>
    binding().qcow2Create(
      path,
      options.virtualSize ?? null,
      options.clusterSize ?? null,
      backing?.path ?? null,
      backing === undefined ? null : (backing.format ?? "qcow2"),
    ),
  );
}

/** Reads the private handle of a chain; set by the class's static block. */
let handleOf: (chain: Qcow2Chain) => NativeHandle;

/**
 * An open backing chain; only the top image is written. Call `close()`: a
 * writable chain that is garbage-collected unclosed is still flushed, but on
 * the main thread and without reporting errors.
 */
export class Qcow2Chain {
  readonly #handle: NativeHandle;

  static {
    handleOf = (chain) => chain.#handle;
  }

  private constructor(handle: NativeHandle) {
    this.#handle = handle;
  }

  /** Opens `path` and every backing file below it, each with its recorded format. */
  static async open(path: string, options: OpenChainOptions = {}): Promise<Qcow2Chain> {
    const handle = await callNative(() =>
      binding().qcow2Open(
        path,
        options.writable ?? false,
        options.allowedDir ?? null,
        options.allowAnyDir ?? false,
        options.maxDepth ?? null,
      ),
    );
    return new Qcow2Chain(handle);
  }

  /**
   * Creates an empty overlay at `path` over the qcow2 image at `backingPath`
   * and opens the new chain for writing.
   */
  static async createOverlay(
    path: string,
    backingPath: string,
    options: Omit<CreateImageOptions, "backing"> & Omit<OpenChainOptions, "writable"> = {},
  ): Promise<Qcow2Chain> {
    await createImage(path, { ...options, backing: { path: backingPath, format: "qcow2" } });
    return Qcow2Chain.open(path, { ...options, writable: true });
  }

  /** Reads `length` bytes at guest byte `offset`. */
  async read(offset: number, length: number): Promise<Buffer> {
    return callNative(() => binding().qcow2Read(this.#handle, offset, length));
  }

  /** Writes `data` at guest byte `offset` into the top image. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    await callNative(() => binding().qcow2Write(this.#handle, offset, asBuffer(data)));
  }

  /** Makes `length` bytes at `offset` read as zeros, masking lower layers. */
  async writeZeroes(offset: number, length: number): Promise<void> {
    await callNative(() => binding().qcow2WriteZeroes(this.#handle, offset, length));
  }

  /** Writes all metadata in crash-consistent order and syncs the file. */
  async flush(): Promise<void> {
    await callNative(() => binding().qcow2Flush(this.#handle));
  }

  /** Flushes and closes the chain. Later calls reject with `ERR_QCOW2_CLOSED`. */
  async close(): Promise<void> {
    await callNative(() => binding().qcow2Close(this.#handle));
  }

  /** Returns one entry per file, top first. */
  async info(): Promise<ImageInfo[]> {
    return callNative(() => binding().qcow2Info(this.#handle));
  }

  /**
   * Copies the raw file at `source` into the chain from offset 0, like
   * `qemu-img convert -f raw`. All-zero clusters become zero writes, so the
   * image stays sparse. The file must not be larger than the disk.
   */
  async importRaw(source: string): Promise<void> {
    await callNative(() => binding().qcow2ImportRaw(this.#handle, source));
  }

  /** Copies the chain, or its top `layers` layers, into `destination`. */
  async flatten(destination: string, options: FlattenOptions = {}): Promise<void> {
    await callNative(() =>
      binding().qcow2Flatten(
        this.#handle,
        destination,
        options.format ?? "qcow2",
        options.layers ?? null,
        options.clusterSize ?? null,
      ),
    );
  }
}

/** Opens `path` read-only and returns the facts of every file in its chain, top first. */
export async function imageInfo(path: string, options: Omit<OpenChainOptions, "writable"> = {}): Promise<ImageInfo[]> {
  const chain = await Qcow2Chain.open(path, options);
  try {
    return await chain.info();
  } finally {
    await chain.close();
  }
}

/**
 * Reads `count` blocks of `size` bytes at offsets 0, step, 2 × step, …
 * (modulo the disk size) in one native call, the pattern of
 * `qemu-img bench -d 1`, and returns the seconds taken. For the benchmark
 * only, so it is not exported from the package.
 */
export async function benchmarkReads(chain: Qcow2Chain, count: number, size: number, step: number): Promise<number> {
  return callNative(() => binding().qcow2BenchReads(handleOf(chain), count, size, step));
}
