/**
 * The decisions of `serveFile` that depend on the request alone: the path in
 * a request target, HTTP-dates, entity-tag lists, the preconditions of
 * conditional requests and byte ranges (RFC 9110 sections 5.6.7, 8.8, 13
 * and 14; RFC 9112 section 3.2). Pure functions: no I/O, no clock except
 * where a `now` argument (milliseconds since the epoch) says so, and no
 * dependence on the process's time zone.
 */

/** A header as `req.headers` or `req.headersDistinct` give it. */
export type FieldValue = string | readonly string[] | undefined;

/** What a representation can be validated by; undefined when the server does not send it. */
export interface Validators {
  /** The ETag field value, e.g. `W/"1f-18c2"`. */
  etag?: string;
  /** The modification time, in whole seconds since the epoch (the file's, not clamped to now). */
  lastModified?: number;
}

/** The request's conditional header fields (raw; lists as Node gives them). */
export interface ConditionalFields {
  method: string;
  ifMatch?: FieldValue;
  ifNoneMatch?: FieldValue;
  ifModifiedSince?: FieldValue;
  ifUnmodifiedSince?: FieldValue;
}

/** A byte range, both ends inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

// ---------------------------------------------------------------------------
// Request targets (RFC 9112 section 3.2).

/**
 * The path of a request target, still percent-encoded, without its query
 * (and without a fragment, which a client must not send but Node accepts),
 * or the status that refuses the target:
 *
 * - origin-form (`/a/b?q`, 3.2.1): its path.
 * - absolute-form (`http://host:port/a/b?q`, 3.2.2, which a server MUST
 *   accept): its path, `/` when empty. Only the `http` and `https` schemes
 *   (case-insensitive); another scheme, an empty host (RFC 9110 4.2.1: MUST
 *   reject) or userinfo (4.2.4: treated as an error) gives 400. The host is
 *   not checked against anything: one root serves every host.
 * - asterisk-form (`*`, 3.2.4, for a server-wide OPTIONS): no file: 400.
 * - authority-form (`host:port`, 3.2.3) exists only for CONNECT, which
 *   Node's server hands to its `'connect'` event, never to a request
 *   handler (for other methods its parser answers 400 itself). Should one
 *   reach this function anyway (a target without `/` that is a host and a
 *   port), it gets 400.
 *
 * Any other string (a relative path such as `a/b.txt`, which no HTTP
 * request can carry but a caller may pass) is taken as a path, as before.
 */
export function requestPath(target: string): string | 400 {
  if (target === '*') return 400;
  if (!target.startsWith('/')) {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(target);
    if (scheme) {
      const s = scheme[1].toLowerCase();
      if (s !== 'http' && s !== 'https') return 400;
      const rest = target.slice(scheme[0].length);
      const end = rest.search(/[/?#]/);
      const authority = end < 0 ? rest : rest.slice(0, end);
      if (authority === '' || authority.includes('@') || /^:\d*$/.test(authority)) return 400;
      const after = end < 0 ? '' : rest.slice(end); // the path, query and fragment
      target = after.startsWith('/') ? after : `/${after}`; // an empty path is "/"
    } else if (/^[^/?#@]*:\d*$/.test(target)) {
      return 400; // authority-form
    }
  }
  const cut = target.search(/[?#]/);
  return cut < 0 ? target : target.slice(0, cut);
}

// ---------------------------------------------------------------------------
// Field values.

/**
 * A field that must occur once (a date, If-Range, Range): its value, or
 * undefined when absent or received more than once (an array of more than
 * one value, as `req.headersDistinct` gives it; RFC 9110 5.3: such a field
 * then has no valid single value, and 13.1.3 / 13.1.4 say to ignore it).
 */
export function singleField(value: FieldValue): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  return value.length === 1 ? value[0] : undefined;
}

/** A list field (RFC 9110 5.3): several lines are one comma-separated list. */
export function listField(value: FieldValue): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.length === 0 ? undefined : value.join(', ');
}

// ---------------------------------------------------------------------------
// HTTP-dates (RFC 9110 section 5.6.7).

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const LONG_DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
const MON = `(${MONTHS.join('|')})`;
/** IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`. */
const IMF_FIXDATE = new RegExp(`^(?:${DAYS.join('|')}), (\\d{2}) ${MON} (\\d{4}) ${TIME} GMT$`);
/** The obsolete RFC 850 form: `Sunday, 06-Nov-94 08:49:37 GMT`. */
const RFC850 = new RegExp(`^(?:${LONG_DAYS.join('|')}), (\\d{2})-${MON}-(\\d{2}) ${TIME} GMT$`);
/** The obsolete asctime form: `Sun Nov  6 08:49:37 1994` (GMT, though it does not say so). */
const ASCTIME = new RegExp(`^(?:${DAYS.join('|')}) ${MON} ( \\d|\\d{2}) ${TIME} (\\d{4})$`);

/**
 * An HTTP-date (RFC 9110 5.6.7) in whole seconds since the epoch, or
 * undefined when `value` is not one. Exactly the three forms of the RFC,
 * case-sensitive, with single spaces: IMF-fixdate, and the obsolete RFC 850
 * and asctime forms, all read as GMT whatever the process's time zone. A
 * two-digit RFC 850 year is the year with those digits within 50 years of
 * `now`: one that would be more than 50 years in the future is in the past
 * century (as 5.6.7 requires). The day name is not checked against the date
 * (recipients are not asked to); an impossible date (`31 Feb`, hour 24) is
 * invalid. A leap second (`:60`) is accepted and counts as the next second.
 */
export function parseHttpDate(value: string, now: number = Date.now()): number | undefined {
  let m = IMF_FIXDATE.exec(value);
  let day: string, month: string, year: number, hms: string[];
  if (m) {
    [day, month, year, hms] = [m[1], m[2], Number(m[3]), m.slice(4, 7)];
  } else if ((m = RFC850.exec(value))) {
    [day, month, hms] = [m[1], m[2], m.slice(4, 7)];
    // The year ending in those digits in (now - 50 years, now + 50 years].
    const later = yearsFrom(now, 50);
    const earlier = yearsFrom(now, -50);
    year = Math.floor(new Date(now).getUTCFullYear() / 100) * 100 + Number(m[3]);
    const t = utcSeconds(year, month, day, hms);
    if (t === undefined) return undefined;
    if (t * 1000 > later) year -= 100;
    else if (t * 1000 <= earlier) year += 100;
  } else if ((m = ASCTIME.exec(value))) {
    [month, day, hms, year] = [m[1], m[2].trim(), m.slice(3, 6), Number(m[6])];
  } else {
    return undefined;
  }
  return utcSeconds(year, month, day, hms);
}

/** `now` moved by whole years (ms). */
function yearsFrom(now: number, years: number): number {
  const d = new Date(now);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d.getTime();
}

function utcSeconds(year: number, month: string, day: string, hms: string[]): number | undefined {
  const mon = MONTHS.indexOf(month);
  const [d, h, mi, s] = [Number(day), Number(hms[0]), Number(hms[1]), Number(hms[2])];
  if (d < 1 || h > 23 || mi > 59 || s > 60) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(year, mon, d); // setUTCFullYear: years 0-99 are not taken as 1900-1999
  if (date.getUTCMonth() !== mon) return undefined; // 31 Feb and the like
  return Math.floor(date.getTime() / 1000) + h * 3600 + mi * 60 + s;
}

// ---------------------------------------------------------------------------
// Entity tags (RFC 9110 section 8.8.3).

/** A parsed entity-tag: `W/"x"` is `{ weak: true, opaque: '"x"' }`. */
export interface EntityTag {
  weak: boolean;
  opaque: string;
}

/** `[ W/ ] DQUOTE *etagc DQUOTE`, etagc = %x21 / %x23-7E / obs-text. */
const ETAG = /^(W\/)?("[\x21\x23-\x7e\x80-\xff]*")/;

/** ETAG, matched at `lastIndex` (sticky). */
const ETAG_AT = /(W\/)?("[\x21\x23-\x7e\x80-\xff]*")/y;
/** Optional whitespace, then a comma or the end, at `lastIndex`. */
const SEPARATOR_AT = /[ \t]*(?:,|$)/y;

/** One entity-tag (8.8.3), or undefined when `value` is not exactly one. */
export function parseEntityTag(value: string): EntityTag | undefined {
  const m = ETAG.exec(value.trim());
  if (!m || m[0].length !== value.trim().length) return undefined;
  return { weak: m[1] !== undefined, opaque: m[2] };
}

/**
 * `"*" / #entity-tag` (If-Match 13.1.1, If-None-Match 13.1.2): `'*'`, the
 * tags (empty list elements skipped, 5.6.1; a comma inside quotes is part
 * of the tag), or undefined when the value is malformed.
 */
export function parseEntityTagList(value: string): '*' | EntityTag[] | undefined {
  const v = value.trim();
  if (v === '*') return '*';
  const tags: EntityTag[] = [];
  let i = 0;
  while (i < v.length) {
    const c = v[i];
    if (c === ',' || c === ' ' || c === '\t') {
      i++;
      continue;
    }
    ETAG_AT.lastIndex = i;
    const m = ETAG_AT.exec(v);
    if (!m) return undefined;
    tags.push({ weak: m[1] !== undefined, opaque: m[2] });
    SEPARATOR_AT.lastIndex = i + m[0].length;
    if (!SEPARATOR_AT.test(v)) return undefined; // something other than a comma follows the tag
    i = SEPARATOR_AT.lastIndex;
  }
  return tags.length === 0 ? undefined : tags;
}

/** Strong comparison (8.8.3.2): neither weak, and the opaque tags identical. */
export function strongMatch(a: EntityTag, b: EntityTag): boolean {
  return !a.weak && !b.weak && a.opaque === b.opaque;
}

/** Weak comparison (8.8.3.2): the opaque tags identical, weak or not. */
export function weakMatch(a: EntityTag, b: EntityTag): boolean {
  return a.opaque === b.opaque;
}

/**
 * Whether a list field matches the current entity tag: `*` matches any
 * current representation (the server has one, with or without an ETag); a
 * list matches if one of its tags does by `compare`; a malformed list, or
 * no ETag at all, never matches.
 */
function listMatches(list: string, etag: string | undefined, compare: (a: EntityTag, b: EntityTag) => boolean): boolean {
  const tags = parseEntityTagList(list);
  if (tags === '*') return true;
  const ours = etag === undefined ? undefined : parseEntityTag(etag);
  return tags !== undefined && ours !== undefined && tags.some((tag) => compare(tag, ours));
}

// ---------------------------------------------------------------------------
// Preconditions (RFC 9110 section 13.2.2).

/**
 * Evaluates the preconditions of a request for a representation that exists,
 * in the order of 13.2.2:
 *
 * 1. If-Match (13.1.1), strong comparison: false gives 412.
 * 2. Else If-Unmodified-Since (13.1.4): later modification than the date
 *    gives 412; ignored without Last-Modified, when not a valid HTTP-date,
 *    or when received more than once.
 * 3. If-None-Match (13.1.2), weak comparison: a match gives 304 for GET and
 *    HEAD, 412 for other methods.
 * 4. Else, for GET and HEAD only, If-Modified-Since (13.1.3): no
 *    modification after the date gives 304; ignored as for (2).
 *
 * `now` (ms) reads two-digit RFC 850 years. Returns `'proceed'`, 304 or 412.
 */
export function evaluatePreconditions(fields: ConditionalFields, v: Validators, now: number = Date.now()): 'proceed' | 304 | 412 {
  const ifMatch = listField(fields.ifMatch);
  if (ifMatch !== undefined) {
    if (!listMatches(ifMatch, v.etag, strongMatch)) return 412;
  } else if (fields.ifUnmodifiedSince !== undefined && v.lastModified !== undefined) {
    const since = dateField(fields.ifUnmodifiedSince, now);
    if (since !== undefined && v.lastModified > since) return 412;
  }
  const safe = fields.method === 'GET' || fields.method === 'HEAD';
  const ifNoneMatch = listField(fields.ifNoneMatch);
  if (ifNoneMatch !== undefined) {
    if (listMatches(ifNoneMatch, v.etag, weakMatch)) return safe ? 304 : 412;
  } else if (safe && fields.ifModifiedSince !== undefined && v.lastModified !== undefined) {
    const since = dateField(fields.ifModifiedSince, now);
    if (since !== undefined && v.lastModified <= since) return 304;
  }
  return 'proceed';
}

function dateField(value: FieldValue, now: number): number | undefined {
  const one = singleField(value);
  return one === undefined ? undefined : parseHttpDate(one.trim(), now);
}

// ---------------------------------------------------------------------------
// Ranges (RFC 9110 section 14).

/**
 * Whether If-Range (13.1.5) lets the Range header apply: absent, or its
 * validator matches the current one. An entity-tag must match the ETag by
 * strong comparison (so a weak ETag never does, whatever the client sends);
 * a date must equal Last-Modified exactly (in whole seconds). Anything else,
 * a value received more than once, or a validator the server does not send,
 * does not match: the Range header is then ignored and the whole
 * representation sent.
 */
export function ifRangeMatches(ifRange: FieldValue, v: Validators, now: number = Date.now()): boolean {
  if (ifRange === undefined) return true;
  const value = singleField(ifRange)?.trim();
  if (value === undefined) return false;
  if (value.startsWith('"') || value.startsWith('W/')) {
    const tag = parseEntityTag(value);
    const ours = v.etag === undefined ? undefined : parseEntityTag(v.etag);
    return tag !== undefined && ours !== undefined && strongMatch(tag, ours);
  }
  const date = parseHttpDate(value, now);
  return date !== undefined && v.lastModified !== undefined && date === v.lastModified;
}

/**
 * The range to send for a request: `{ start, end }` (inclusive) for 206,
 * `'unsatisfiable'` for 416 (with `Content-Range: bytes *\/size`), or
 * undefined for the whole representation with 200. Range applies to GET
 * only (14.2: a server MUST ignore it for methods that do not define range
 * handling, HEAD included), only once (a Range received more than once is
 * ignored), and only when If-Range allows ({@link ifRangeMatches}).
 */
export function selectRange(
  method: string,
  range: FieldValue,
  ifRange: FieldValue,
  v: Validators,
  size: number,
  now: number = Date.now(),
): ByteRange | 'unsatisfiable' | undefined {
  if (method !== 'GET') return undefined;
  const value = singleField(range);
  if (value === undefined || !ifRangeMatches(ifRange, v, now)) return undefined;
  return parseRange(value, size);
}

/**
 * One byte range of a representation of `size` bytes (14.1.1, 14.1.2):
 * `{ start, end }` (inclusive, `end` clamped to the last byte), or
 * `'unsatisfiable'` when no byte can be sent (a first-pos at or past the
 * end, a suffix of 0), or undefined when the header is to be ignored and the
 * whole representation sent with 200: another unit than `bytes`, a
 * malformed or invalid range-spec (last-pos before first-pos), several
 * ranges (pagewarm sends no multipart/byteranges), and a suffix range
 * (`-N`, N > 0) of an empty representation, which is satisfiable (14.1.1)
 * but has no byte a 206 could describe. The unit is case-insensitive;
 * empty list elements are skipped (5.6.1).
 */
export function parseRange(value: string, size: number): ByteRange | 'unsatisfiable' | undefined {
  const spec = /^\s*bytes\s*=(.*)$/i.exec(value);
  if (!spec) return undefined;
  const specs = spec[1].split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length !== 1) return undefined;
  const m = /^(\d*)\s*-\s*(\d*)$/.exec(specs[0]);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    if (size === 0) return undefined;
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return undefined; // invalid: ignored
  if (start >= size) return 'unsatisfiable';
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return { start, end };
}
