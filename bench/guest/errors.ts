import { LayerdiskError, type LayerdiskErrorDetails } from "../../src/errors.js";

/**
 * Stable codes for failures of the guest harness. Tests match on these, so
 * a code keeps its meaning once published.
 */
export type GuestErrorCode =
  | "ERR_GUEST_TOOL_FAILED"
  | "ERR_GUEST_KERNEL_NOT_FOUND"
  | "ERR_GUEST_MODULE_NOT_FOUND"
  | "ERR_GUEST_TIMEOUT"
  | "ERR_GUEST_NO_RESULT"
  | "ERR_GUEST_SETUP_FAILED"
  | "ERR_GUEST_INVALID_ARG"
  | "ERR_GUEST_VIRTIOFSD_FAILED";

/** A failure to prepare, boot or read back a test guest. */
export class GuestError extends LayerdiskError {
  declare readonly code: GuestErrorCode;
  /** The guest serial console so far, when a boot was involved. */
  readonly console?: string;

  constructor(
    code: GuestErrorCode,
    message: string,
    details: LayerdiskErrorDetails & { console?: string } = {},
  ) {
    super(code, message, details);
    if (details.console !== undefined) this.console = details.console;
  }
}
