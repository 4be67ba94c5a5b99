/**
 * A point in time as whole seconds since the Unix epoch (negative before
 * 1970) plus nanoseconds in [0, 1e9), the split that ext4 and `stat` use.
 */
export interface Timespec {
  sec: number;
  nsec: number;
}

const NS_PER_SECOND = 1_000_000_000n;

/**
 * Parses a PAX time value such as `1700000000.123456789` or `-1.25`.
 *
 * POSIX pax: times are decimal seconds since the epoch with an optional
 * fraction. The value is exact, so `-1.25` is 1.25 s before the epoch,
 * which is `{ sec: -2, nsec: 750000000 }`. Digits past nanoseconds are cut.
 * Returns `undefined` for text that is not such a number.
 */
export function parsePaxTime(text: string): Timespec | undefined {
  const match = /^(-?)([0-9]{1,20})(?:\.([0-9]*))?$/.exec(text);
  if (match === null) return undefined;

  const [, sign, whole, fraction = ""] = match;
  const fractionNs = BigInt((fraction + "000000000").slice(0, 9));
  let total = BigInt(whole as string) * NS_PER_SECOND + fractionNs;
  if (sign === "-") total = -total;
  return fromNanoseconds(total);
}

/** Converts a count of nanoseconds since the epoch into a `Timespec`. */
export function fromNanoseconds(total: bigint): Timespec {
  let sec = total / NS_PER_SECOND;
  let nsec = total % NS_PER_SECOND;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += NS_PER_SECOND;
  }
  return { sec: Number(sec), nsec: Number(nsec) };
}

/** Converts a `Timespec` into nanoseconds since the epoch. */
export function toNanoseconds(time: Timespec): bigint {
  return BigInt(time.sec) * NS_PER_SECOND + BigInt(time.nsec);
}
