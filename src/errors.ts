/**
 * Errors thrown by layerdisk. Every one has a stable `code`; errors about a
 * file carry `file` and, for corruption, the byte `offset` at fault.
 */

export interface LayerdiskErrorDetails {
  /** Image or blob file at fault. */
  file?: string;
  /** Byte offset inside `file`. */
  offset?: number;
  /** Path inside the filesystem image or tar archive. */
  path?: string;
  /** Content digest at fault, such as `sha256:...`. */
  digest?: string;
  cause?: unknown;
}

export class LayerdiskError extends Error {
  readonly code: string;
  readonly file?: string;
  readonly offset?: number;
  readonly path?: string;
  readonly digest?: string;

  constructor(code: string, message: string, details: LayerdiskErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    if (details.file !== undefined) this.file = details.file;
    if (details.offset !== undefined) this.offset = details.offset;
    if (details.path !== undefined) this.path = details.path;
    if (details.digest !== undefined) this.digest = details.digest;
  }
}

/** A qcow2 image that is invalid, unsupported or inconsistent. */
export class Qcow2Error extends LayerdiskError {}

/** An ext4 filesystem operation that failed, such as a name too long or a full disk. */
export class Ext4Error extends LayerdiskError {}

/** An image that cannot be found, parsed or verified: bad reference, manifest, config or blob. */
export class ImageError extends LayerdiskError {}

/** A tar archive that is malformed or uses an unsupported feature. */
export class TarError extends LayerdiskError {}

/** A layer entry that cannot be applied, such as a hardlink to a missing file. */
export class LayerError extends LayerdiskError {}

/** An internal failure of the native core, such as a caught Rust panic. */
export class NativeError extends LayerdiskError {}

/**
 * A failure to pull from an OCI distribution registry. `reference` is the
 * image reference being pulled and `status` the HTTP status, when there is one.
 */
export class RegistryError extends LayerdiskError {
  readonly reference?: string;
  readonly status?: number;

  constructor(code: string, message: string, details: LayerdiskErrorDetails & { reference?: string; status?: number } = {}) {
    super(code, message, details);
    if (details.reference !== undefined) this.reference = details.reference;
    if (details.status !== undefined) this.status = details.status;
  }
}

/** A bad argument passed to a native function. */
export class InvalidArgumentError extends LayerdiskError {}

interface RawNativeError {
  code?: unknown;
  message?: unknown;
  file?: unknown;
  offset?: unknown;
  path?: unknown;
}

/** Picks the Error subclass for a native error code. */
function classForCode(code: string): typeof LayerdiskError {
  if (code.startsWith("ERR_QCOW2_")) return Qcow2Error;
  if (code.startsWith("ERR_EXT4_")) return Ext4Error;
  if (code.startsWith("ERR_INVALID_ARG")) return InvalidArgumentError;
  return NativeError;
}

/** Converts an error thrown by the native addon into a `LayerdiskError` subclass. */
export function fromNativeError(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof LayerdiskError) return error;
  const raw = error as RawNativeError;
  if (typeof raw.code !== "string") return error;

  const details: LayerdiskErrorDetails = { cause: error };
  if (typeof raw.file === "string") details.file = raw.file;
  if (typeof raw.offset === "number") details.offset = raw.offset;
  if (typeof raw.path === "string") details.path = raw.path;
  const ErrorClass = classForCode(raw.code);
  return new ErrorClass(raw.code, error.message, details);
}
