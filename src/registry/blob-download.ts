/**
 * Downloading one blob into the cache, verified while it streams.
 *
 * Bytes go to a temporary file beside the final one while a SHA-256 runs
 * over them. After a connection reset the download continues with
 * `Range: bytes=N-` (an HTTP range request, RFC 9110) and the same running hash. The
 * file is renamed into place only when size and digest match the
 * descriptor. On any failure the temporary file is deleted, so a bad blob
 * never reaches the cache.
 */

import { createHash } from "node:crypto";
import type { Hash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { mkdir, open, rm, stat } from "node:fs/promises";
import type http from "node:http";
import { dirname } from "node:path";

import { RegistryError } from "../errors.js";
import { publishFile, temporaryPathFor } from "../store/atomic.js";
import type { BlobCache } from "./blob-cache.js";
import type { RegistryClient, RequestContext } from "./client.js";
import type { Descriptor } from "./manifest.js";
import { TransportAbortedError, TransportTimeoutError } from "./transport.js";

export interface BlobDownload {
  client: RegistryClient;
  repository: string;
  /** Image reference for error messages. */
  reference: string;
  descriptor: Descriptor;
  cache: BlobCache;
  /** Resumes allowed in a row without new bytes; later failures raise. */
  maxResumes: number;
  signal?: AbortSignal;
  /** Called as bytes arrive, with the count verified so far. */
  onBytes?: (bytesDone: number) => void;
}

export interface BlobResult {
  file: string;
  /** True when the blob was already in the cache or was fetched by another caller in this process. */
  cached: boolean;
}

/**
 * A download that several callers wait for. It is cancelled only when every
 * caller has abandoned it, so one aborted pull does not fail another.
 */
interface SharedDownload {
  promise: Promise<string>;
  controller: AbortController;
  waiters: number;
}

/** Downloads in progress in this process, by final path, so concurrent pulls of one blob share it. */
const inFlight = new Map<string, SharedDownload>();

async function existingSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Returns the cached file of a blob, downloading and verifying it first if
 * it is not in the cache. A cached file of the wrong size is replaced.
 */
export async function fetchBlob(download: BlobDownload): Promise<BlobResult> {
  const file = download.cache.blobFile(download.descriptor.digest);
  if ((await existingSize(file)) === download.descriptor.size) return { file, cached: true };

  let shared = inFlight.get(file);
  const cached = shared !== undefined;
  if (shared === undefined) {
    const controller = new AbortController();
    const promise = downloadToCache({ ...download, signal: controller.signal }, file).finally(() => inFlight.delete(file));
    shared = { promise, controller, waiters: 0 };
    inFlight.set(file, shared);
  }
  return { file: await waitForShared(shared, download), cached };
}

/**
 * Waits for a shared download, or rejects with `ERR_REGISTRY_ABORTED` as soon
 * as this caller's signal aborts. The last caller to abandon the download
 * cancels it and waits until its temporary file is deleted.
 */
async function waitForShared(shared: SharedDownload, download: BlobDownload): Promise<string> {
  const { signal } = download;
  shared.waiters += 1;
  let onAbort: (() => void) | undefined;
  const abandoned = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      shared.waiters -= 1;
      const aborted = download.client.networkError(new TransportAbortedError(download.client.baseUrl.href), {
        context: contextOf(download),
      });
      if (shared.waiters > 0) {
        reject(aborted);
        return;
      }
      shared.controller.abort();
      shared.promise.then(
        () => reject(aborted),
        () => reject(aborted),
      );
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });

  try {
    return await Promise.race([shared.promise, abandoned]);
  } finally {
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
  }
}

interface Progress {
  handle: FileHandle;
  hash: Hash;
  bytesDone: number;
}

function isResumable(error: unknown): boolean {
  if (error instanceof TransportAbortedError) return false;
  if (error instanceof TransportTimeoutError) return true;
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ECONNRESET" || code === "EPIPE" || code === "ERR_STREAM_PREMATURE_CLOSE";
}

async function downloadToCache(download: BlobDownload, file: string): Promise<string> {
  const { descriptor } = download;
  await mkdir(dirname(file), { recursive: true });
  const temporary = temporaryPathFor(file);
  const handle = await open(temporary, "wx", 0o644);
  const progress: Progress = { handle, hash: createHash("sha256"), bytesDone: 0 };

  try {
    let failuresWithoutProgress = 0;
    while (progress.bytesDone < descriptor.size || descriptor.size === 0) {
      const before = progress.bytesDone;
      try {
        await receive(download, progress);
        break;
      } catch (error) {
        // A failure after new bytes resets the count, so a slow but moving
        // download is never given up while a stuck one is.
        failuresWithoutProgress = progress.bytesDone > before ? 0 : failuresWithoutProgress + 1;
        const resume = isResumable(error) && !download.signal?.aborted && failuresWithoutProgress <= download.maxResumes;
        if (!resume) throw download.client.networkError(error, { context: contextOf(download) });
      }
    }

    verify(download, progress);
    await handle.close();
    await publishFile(temporary, file);
    return file;
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(temporary, { force: true });
    throw error;
  }
}

function contextOf(download: BlobDownload): RequestContext {
  const { digest } = download.descriptor;
  return { reference: download.reference, object: `blob ${digest}`, digest };
}

/** Sends one GET (ranged when resuming) and appends its body to the file and the hash. */
async function receive(download: BlobDownload, progress: Progress): Promise<void> {
  const { descriptor } = download;
  const headers: Record<string, string> = {};
  if (progress.bytesDone > 0) headers.range = `bytes=${progress.bytesDone}-`;

  const response = await download.client.request({
    path: `/v2/${download.repository}/blobs/${descriptor.digest}`,
    headers,
    scope: `repository:${download.repository}:pull`,
    context: contextOf(download),
    ...(download.signal === undefined ? {} : { signal: download.signal }),
  });
  await startAt(response, progress);

  for await (const chunk of response) {
    const buffer = chunk as Buffer;
    if (progress.bytesDone + buffer.length > descriptor.size) {
      response.destroy();
      throw sizeMismatch(download, `more than ${descriptor.size} bytes`);
    }
    await progress.handle.write(buffer, 0, buffer.length, progress.bytesDone);
    progress.hash.update(buffer);
    progress.bytesDone += buffer.length;
    download.onBytes?.(progress.bytesDone);
  }
}

/**
 * Positions the download where the response starts. A 206 must start at the
 * requested offset. A 200 to a ranged request means the server ignored the
 * range, so the download starts over.
 */
async function startAt(response: http.IncomingMessage, progress: Progress): Promise<void> {
  if (progress.bytesDone === 0) return;
  if (response.statusCode === 206) {
    const start = /^bytes (\d+)-/.exec(String(response.headers["content-range"] ?? ""))?.[1];
    if (start !== undefined && Number(start) === progress.bytesDone) return;
  }
  await progress.handle.truncate(0);
  progress.hash = createHash("sha256");
  progress.bytesDone = 0;
}

function sizeMismatch(download: BlobDownload, actual: string): RegistryError {
  const { digest, size } = download.descriptor;
  return new RegistryError(
    "ERR_SIZE_MISMATCH",
    `blob ${digest} of ${download.reference} is ${actual}, but the manifest gives ${size} bytes; the blob was not cached`,
    { reference: download.reference, digest },
  );
}

function verify(download: BlobDownload, progress: Progress): void {
  const { digest, size } = download.descriptor;
  if (progress.bytesDone !== size) throw sizeMismatch(download, `${progress.bytesDone} bytes`);

  const actual = `sha256:${progress.hash.digest("hex")}`;
  if (actual !== digest) {
    throw new RegistryError(
      "ERR_DIGEST_MISMATCH",
      `blob ${digest} of ${download.reference} has digest ${actual} after download; the blob was not cached`,
      { reference: download.reference, digest },
    );
  }
}
