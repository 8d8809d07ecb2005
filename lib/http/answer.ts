/**
 * How serveFile answers once it has an open, checked regular file: its
 * validators and the request's preconditions and range (decided by
 * conditional.ts), then the body; and its short answers (errors, 304).
 */
import * as http from 'node:http';
import { evaluatePreconditions, selectRange, type FieldValue, type Validators } from './conditional';
import { FAST_MAX, residentBody, type FastPath } from './fast-body';
import type { Encoding } from './encoding';
import { derive, type Meta } from './file-meta';
import type { FileStat } from './options';
import type { Meter } from '../core/settle';
import { endResponse, ended, respond } from './response';

/** What `serveFile` (serve.ts) resolves with. */
export interface ServeFileResult {
  /** The status sent: 200, 206, 304, 400, 403, 404, 405, 412, 416 or 500 (403/404 also for dotfiles, see `ServeFileOptions.dotfiles`). */
  statusCode: number;
  /** Body bytes of the file sent (0 for HEAD and error responses). */
  bytes: number;
  /**
   * Whether the body went zero-copy. False for bodies copied: over TLS, through
   * wrapped responses, in the portable fallback, and for small resident bodies
   * sent by the open-file cache's fast path.
   */
  zeroCopy: boolean;
}

/** What serveFile was asked to do. */
export interface Served {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** The file opened: the one asked for, or its precompressed variant. */
  target: string;
  /** The file asked for: its name gives the Content-Type, and setHeaders is told it. */
  typeTarget: string;
  /** The coding of a precompressed variant (Content-Encoding), else undefined. */
  encoding: Encoding | undefined;
  root: string | undefined;
  useEtag: boolean;
  useLastModified: boolean;
  /** The Cache-Control value, or undefined for none. */
  cacheControl: string | undefined;
  acceptRanges: boolean;
  /** Send `Vary: Accept-Encoding` (precompressed variants are on). */
  vary: boolean;
  setHeaders: ((res: http.ServerResponse, path: string, stat: FileStat) => void) | undefined;
  /** Called before anything of the response is written (perhaps more than once: idempotent). */
  beforeAnswer: (() => void) | undefined;
  /** A traced request's figures (bytes from the disk, waits for a thread), else undefined. */
  meter: Meter | undefined;
}

/** serveOpen's answer when the file changed while it was read: start over. */
export const RETRY = Symbol('retry');

/**
 * The response for an open, checked regular file: validators, preconditions
 * (304, 412), the range (206, 416), then the body: read on the JS thread
 * when `fast` allows and the page cache holds it, else as
 * {@link respond} sends it. `fd` stays the caller's to close.
 * @returns What was sent, or RETRY when the file changed while it was read
 *   (only the fast path reads it, and nothing was written then).
 * @throws (as a rejection) the errors of {@link respond} once the body has begun.
 */
export async function serveOpen(s: Served, fd: number, meta: Meta, fast: FastPath): Promise<ServeFileResult | typeof RETRY> {
  const { req, res, useEtag, useLastModified } = s;
  s.beforeAnswer?.();
  const size = meta.size;
  let d = meta.derived;
  if (d === undefined || d.forType !== s.typeTarget || d.encoding !== s.encoding) {
    d = meta.derived = derive(meta, s.typeTarget, s.encoding);
  }
  const { etag, mtime, lastModified, contentType: type } = d;
  const headers: http.OutgoingHttpHeaders = {};
  if (s.cacheControl !== undefined) headers['cache-control'] = s.cacheControl;
  if (useEtag) headers.etag = etag;
  // Never a Last-Modified later than the response's Date (RFC 9110 8.8.2.1):
  // a file dated in the future is sent as modified now, with that same Date
  // (Node's own Date string is refreshed by a timer, and may lag a second).
  const now = Date.now();
  if (useLastModified) {
    if (mtime * 1000 > now) headers.date = headers['last-modified'] = new Date(now).toUTCString();
    else headers['last-modified'] = lastModified;
  }

  const userSet = s.setHeaders ? applySetHeaders(s, meta, headers) : undefined;
  if (s.vary) headers.vary = varyAcceptEncoding(res.getHeader('vary'));

  // Preconditions and Range, RFC 9110 13.2.2 and 14.2 (see conditional.ts).
  const method = req.method ?? 'GET';
  const v: Validators = { etag: useEtag ? etag : undefined, lastModified: useLastModified ? mtime : undefined };
  const verdict = evaluatePreconditions({
    method,
    ifMatch: field(req, 'if-match'),
    ifNoneMatch: field(req, 'if-none-match'),
    ifModifiedSince: field(req, 'if-modified-since'),
    ifUnmodifiedSince: field(req, 'if-unmodified-since'),
  }, v, now);
  if (verdict === 412) return fail(res, 412, headers);
  if (verdict === 304) return notModified(res, headers);

  // Representation metadata: not on a 304 (RFC 9110 15.4.5) or a 412.
  if (s.acceptRanges && !userSet?.has('accept-ranges')) headers['accept-ranges'] = 'bytes';
  if (!userSet?.has('content-type')) headers['content-type'] = type;
  if (s.encoding !== undefined) headers['content-encoding'] = s.encoding;
  let statusCode = 200;
  let start = 0;
  let count = size;
  const range = s.acceptRanges ? selectRange(method, field(req, 'range'), field(req, 'if-range'), v, size, now) : undefined;
  if (range === 'unsatisfiable') {
    return fail(res, 416, { ...headers, 'content-range': `bytes */${size}` });
  }
  if (range) {
    statusCode = 206;
    start = range.start;
    count = range.end - range.start + 1;
    headers['content-range'] = `bytes ${range.start}-${range.end}/${size}`;
  }
  if (fast && count > 0 && count <= FAST_MAX && req.method !== 'HEAD') {
    // Read the range here if the page cache holds it all: a memory copy, no
    // disk wait. The headers and the body then leave in one write, through
    // res.end() (so wrapped responses, TLS and pipelining work as usual).
    // Otherwise the body goes zero-copy from pagewarm's threads, below.
    const read = residentBody(res, fd, start, count, fast);
    if (read === 'changed') return RETRY;
    if (read !== 'not cached') {
      headers['content-length'] = count;
      res.writeHead(statusCode, headers);
      await endResponse(res, read.body, read.written);
      return { statusCode, bytes: count, zeroCopy: false };
    }
  }
  const sent = await respond(res, { fd, close: async () => undefined }, start, count, statusCode, headers, undefined, s.meter);
  return { statusCode, bytes: sent.bytes, zeroCopy: sent.zeroCopy };
}

/**
 * Calls the caller's setHeaders and gives way to what it set: a header it
 * set is not overwritten by serveFile's own of that name (as `send` does).
 * @returns the names, of those serveFile sets, that setHeaders set.
 */
function applySetHeaders(s: Served, meta: Meta, headers: http.OutgoingHttpHeaders): Set<string> {
  const mtime = new Date(meta.mtimeMs);
  s.setHeaders!(s.res, s.typeTarget, {
    size: meta.size, mtime, mtimeMs: meta.mtimeMs, dev: meta.dev, ino: meta.ino,
    isFile: () => true, isDirectory: () => false,
  });
  const set = new Set<string>();
  for (const name of ['cache-control', 'etag', 'last-modified', 'accept-ranges', 'content-type']) {
    if (s.res.hasHeader(name)) {
      set.add(name);
      delete headers[name];
    }
  }
  return set;
}

/**
 * The Vary value for a response that depends on Accept-Encoding: `existing`
 * (set by the caller or setHeaders) with Accept-Encoding appended unless it
 * is named already or is `*`.
 */
export function varyAcceptEncoding(existing: number | string | string[] | undefined): string {
  const list = existing === undefined ? [] : (Array.isArray(existing) ? existing : [String(existing)]).join(',').split(',')
    .map((v) => v.trim()).filter((v) => v !== '');
  if (list.some((v) => v === '*' || v.toLowerCase() === 'accept-encoding')) return list.join(', ');
  return [...list, 'Accept-Encoding'].join(', ');
}

/** An error or empty response with a short text body. */
export async function fail(res: http.ServerResponse, statusCode: number, extra: http.OutgoingHttpHeaders = {}): Promise<ServeFileResult> {
  const body = Buffer.from(`${statusCode} ${http.STATUS_CODES[statusCode] ?? ''}\n`);
  const headers: http.OutgoingHttpHeaders = { ...extra };
  delete headers.etag;
  delete headers['last-modified'];
  delete headers['cache-control'];
  headers['content-type'] = 'text/plain; charset=utf-8';
  headers['content-length'] = body.length;
  headers['x-content-type-options'] = 'nosniff';
  res.writeHead(statusCode, headers);
  await endResponse(res, body);
  return { statusCode, bytes: 0, zeroCopy: false };
}

/** A 304 response with `headers` (no body). */
export async function notModified(res: http.ServerResponse, headers: http.OutgoingHttpHeaders): Promise<ServeFileResult> {
  res.writeHead(304, headers);
  await ended(res);
  return { statusCode: 304, bytes: 0, zeroCopy: false };
}

/**
 * A request header for conditional.ts: every received line
 * (`req.headersDistinct`), since Node keeps only the first of a repeated
 * If-Modified-Since and joins repeated If-Range lines with commas, and a
 * field received twice must be told apart (RFC 9110 13.1.3, 13.1.4).
 */
function field(req: http.IncomingMessage, name: string): FieldValue {
  const value = req.headers[name];
  if (value === undefined) return undefined;
  return req.headersDistinct?.[name] ?? value;
}
