// Time ranges as the URL keeps them ("now-15m", "now", or epoch milliseconds) and the
// histogram's bucket size for a range.

export const RELATIVE_RANGES = [
  { label: "Last 15 minutes", from: "now-15m" },
  { label: "Last 1 hour", from: "now-1h" },
  { label: "Last 24 hours", from: "now-24h" },
  { label: "Last 7 days", from: "now-7d" },
];

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Epoch milliseconds of `expression` at `nowMs`; throws on what it cannot read. */
export function resolveTime(expression, nowMs) {
  const text = String(expression).trim();
  if (text === "now") return nowMs;
  const relative = /^now-(\d+)([smhdw])$/.exec(text);
  if (relative) return nowMs - Number(relative[1]) * UNIT_MS[relative[2]];
  if (/^-?\d+$/.test(text)) return Number(text);
  const parsed = Date.parse(text);
  if (!Number.isNaN(parsed)) return parsed;
  throw new Error(`not a time: "${text}" (use now, now-15m, an ISO date or epoch milliseconds)`);
}

export function isRelative(expression) {
  return String(expression).startsWith("now");
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// Intervals a reader can add up in their head; the smallest is the native API's precision.
const NICE_INTERVALS_MS = [
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 30 * DAY,
];

/** The smallest nice interval that cuts `rangeMs` into at most `maxBuckets` buckets. */
export function bucketInterval(rangeMs, maxBuckets = 80) {
  const wanted = Math.max(rangeMs, 0) / maxBuckets;
  for (const interval of NICE_INTERVALS_MS) {
    if (interval >= wanted) return interval;
  }
  return NICE_INTERVALS_MS[NICE_INTERVALS_MS.length - 1];
}

/** An interval as a date_histogram `fixed_interval` ("30s", "5m", "1h", "1d"). */
export function intervalLabel(intervalMs) {
  for (const [unit, ms] of [["d", DAY], ["h", HOUR], ["m", MINUTE], ["s", SECOND]]) {
    if (intervalMs % ms === 0) return `${intervalMs / ms}${unit}`;
  }
  return `${intervalMs}ms`;
}

function pad(number, width = 2) {
  return String(number).padStart(width, "0");
}

/** Local time, to the millisecond: `2026-12-02 00:42:41.123`. */
export function formatTimestamp(ms) {
  if (!Number.isFinite(ms)) return "";
  const date = new Date(ms);
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** The value of `<input type="datetime-local">` for a time (local, to the second). */
export function toDatetimeLocal(ms) {
  return formatTimestamp(ms).slice(0, 19).replace(" ", "T");
}

/** Milliseconds of a timestamp as hits carry it: RFC 3339 text, or an epoch number of
 * seconds, milliseconds, microseconds or nanoseconds (told apart by magnitude). */
export function timestampMs(value) {
  if (typeof value === "number") {
    const magnitude = Math.abs(value);
    // Rounded to the microsecond: fractional seconds are not exact in binary.
    if (magnitude < 1e11) return Math.round(value * 1e6) / 1000;
    if (magnitude < 1e14) return value;
    if (magnitude < 1e17) return value / 1000;
    return Math.round(value / 1000) / 1000;
  }
  if (typeof value === "string") {
    if (/^-?\d+(\.\d+)?$/.test(value)) return timestampMs(Number(value));
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? NaN : parsed;
  }
  return NaN;
}

/** A range in words for the summary line. */
export function describeRange(from, to) {
  const preset = RELATIVE_RANGES.find((range) => range.from === from);
  if (preset && to === "now") return preset.label.toLowerCase();
  const describe = (expression) =>
    isRelative(expression) ? expression : formatTimestamp(resolveTime(expression, Date.now()));
  return `${describe(from)} to ${describe(to)}`;
}
