/**
 * The `maxAge` option of serveFile and serveStatic, as serve-static reads it:
 * milliseconds, or a duration string (`'30s'`, `'1h'`, `'7d'`, `'1y'`),
 * rounded down to whole seconds for `Cache-Control: max-age` and capped at
 * one year (Infinity included). Pure functions.
 */
import { invalidArgType, invalidArgValue, outOfRange } from '../core/errors';

/** One year in seconds: the cap RFC 9111 5.2.2.1's advice and `send` both use. */
export const MAX_AGE_CAP_S = 60 * 60 * 24 * 365;

const UNIT_MS: Record<string, number> = {
  ms: 1, msec: 1, msecs: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
  y: 31_557_600_000, yr: 31_557_600_000, yrs: 31_557_600_000, year: 31_557_600_000, years: 31_557_600_000,
};

const DURATION = /^(\d+(?:\.\d+)?|\.\d+) *([a-z]*)$/i;

/**
 * `value` (milliseconds, or a duration string) as whole seconds, 0 when
 * undefined, at most {@link MAX_AGE_CAP_S}.
 * @throws TypeError `ERR_INVALID_ARG_TYPE` (neither number nor string),
 *   RangeError `ERR_OUT_OF_RANGE` (negative or NaN),
 *   TypeError `ERR_INVALID_ARG_VALUE` (a string that is not a duration).
 */
export function toMaxAgeSeconds(value: unknown, name = 'options.maxAge'): number {
  if (value === undefined) return 0;
  let ms: number;
  if (typeof value === 'number') {
    if (Number.isNaN(value) || value < 0) throw outOfRange(name, '>= 0 (milliseconds)', value);
    ms = value;
  } else if (typeof value === 'string') {
    const m = DURATION.exec(value.trim());
    const unit = m ? (m[2] === '' ? 1 : UNIT_MS[m[2]!.toLowerCase()]) : undefined;
    if (!m || unit === undefined) {
      throw invalidArgValue(name, value, "must be milliseconds or a duration such as '30s', '1h', '7d'");
    }
    ms = Number(m[1]) * unit;
  } else {
    throw invalidArgType(name, 'of type number or string', value);
  }
  return Math.min(MAX_AGE_CAP_S, Math.floor(ms / 1000));
}
