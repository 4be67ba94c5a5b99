/**
 * Retry timing: exponential backoff with jitter, and the `Retry-After`
 * header (RFC 9110 section 10.2.3), which is either a number of seconds or
 * an HTTP date.
 */

export interface RetryPolicy {
  /** Total attempts per request, the first one included. */
  attempts: number;
  /** Delay before the first retry, in milliseconds; it doubles on each retry. */
  baseDelayMs: number;
  /** Upper bound of a backoff delay, in milliseconds. */
  maxDelayMs: number;
  /** Longest `Retry-After` wait accepted, in milliseconds; a longer one fails the request at once. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  attempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 120_000,
};

/** Tells whether a status is worth retrying: 408, 429 and every 5xx except 501 and 505, which will not change. */
export function isRetryableStatus(status: number): boolean {
  if (status === 408 || status === 429) return true;
  return status >= 500 && status <= 599 && status !== 501 && status !== 505;
}

/**
 * Parses a `Retry-After` value into milliseconds from `now`. Returns
 * undefined for a missing or malformed value. A date in the past gives 0.
 */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;

  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Returns the backoff before retry number `retry` (0 for the first retry), with up to 25 % random jitter added. */
export function backoffDelay(policy: RetryPolicy, retry: number): number {
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.round(exponential * (1 + Math.random() * 0.25));
}

/** Waits `ms` milliseconds, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
