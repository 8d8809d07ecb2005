/**
 * HTTP/1.x responses with zero-copy bodies: `sendFileResponse` for a file
 * (or part of one) as a whole response, and `serveFile` for a static file
 * server's GET/HEAD handling (ranges, validators, confinement to a root).
 */
import * as fs from 'node:fs';
import { realpath } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import { join, resolve as resolvePath, sep } from 'node:path';
import { contentType } from './mime';
import { descriptorRealPath, inside } from '../core/paths';
import { openPath, openSource, pinSource, sendOwnedFile, toSource, type Input, type SendFileResult } from '../send/socket';
import { invalidArgType, invalidArgValue, type CodedError } from '../core/errors';
import { toBoolean, toIntInRange, toOptions, toPosition, toSignal, type FileLike } from '../core/validate';
import { abortError } from '../send/transfer';
import { linkedSignal, whenAborted } from '../core/abort';
import { binding } from '../core/native';
import { evaluatePreconditions, requestPath, selectRange, type FieldValue, type Validators } from './conditional';
import { isNativeFailure } from '../core/errors';

/** @internal */
export { parseRange } from './conditional';

/** Options for {@link sendFileResponse}. */
export interface SendFileResponseOptions {
  /** Byte offset in the file to start at. Default 0. */
  offset?: number;
  /** Bytes to send. Default: to the end of the file. Clamped to the file's size. */
  length?: number;
  /** The status code, 200-599 (a RangeError `ERR_OUT_OF_RANGE` otherwise). Default 200. */
  statusCode?: number;
  /** Response headers, merged over those set with `res.setHeader()`. Content-Length is always set by pagewarm. */
  headers?: http.OutgoingHttpHeaders;
  /**
   * Aborts the response, at any stage: the promise rejects with an
   * `AbortError` whose `bytesSent` is the body bytes sent (zero-copy: that
   * left for the socket; copied: handed to `res.write()`). Aborted before
   * the status line was written (while the file opens, or while a pipelined
   * response waits for its connection), nothing is written and the response
   * is left to the caller (`bytesSent` 0); after, the connection is
   * destroyed, as the response can no longer be completed. One signal may
   * be shared by any number of concurrent responses.
   */
  signal?: AbortSignal;
}

/**
 * Sends a file (or `[offset, offset + length)` of it) as the whole response:
 * sets Content-Length (and Content-Type from the extension when `file` is a
 * path and no Content-Type was given), writes the status line and headers,
 * sends the body, and ends the response.
 *
 * On plain HTTP/1.x the body goes zero-copy from the page cache to the
 * socket, warmed and sent on pagewarm's threads (see `sendFile`); keep-alive
 * and pipelined requests on the connection keep working (a pipelined
 * response waits for the connection like any other). Over HTTPS the body is
 * copied through the TLS socket; for responses whose `write`/`end` were
 * replaced (compression middleware) and for HTTP/2 compatibility responses
 * it is written through `res.write()`. HEAD requests and 204/304 responses
 * get no body. Usable from Express handlers (`res`) and Fastify
 * (`reply.hijack()` then `reply.raw`).
 *
 * If the body cannot be completed (the client went away, the file shrank,
 * an abort) the connection is destroyed, as no valid response can follow.
 *
 * @param res The response, headers not yet sent.
 * @param file A path, a descriptor open for reading, or a FileHandle (a regular file).
 * @returns `{ bytes, zeroCopy }`: body bytes sent, and how.
 * @throws (as a rejection) TypeError / RangeError for bad arguments; `ERR_HTTP_HEADERS_SENT`;
 *   a system error opening the file (`ENOENT`, `EISDIR`, ...) before anything is written;
 *   the errors of `sendFile` (with `bytesSent`) when the body fails;
 *   `ERR_HTTP_CONTENT_LENGTH_MISMATCH` when the file ended before Content-Length bytes.
 */
export async function sendFileResponse(
  res: http.ServerResponse,
  file: FileLike | string,
  options?: SendFileResponseOptions,
): Promise<SendFileResult> {
  checkResponse(res);
  const source = toSource(file);
  const opts = toOptions<SendFileResponseOptions>(options);
  const offset = toPosition(opts.offset, 'options.offset', 0);
  const length = opts.length === undefined ? -1 : toPosition(opts.length, 'options.length', 0);
  const statusCode = opts.statusCode === undefined ? 200 : toIntInRange(opts.statusCode, 'options.statusCode', 200, 599);
  const headers = toHeaders(opts.headers);
  const signal = toSignal(opts.signal);
  if (signal?.aborted) throw abortError(signal, 0);
  if (res.headersSent) throw headersSent();

  const input = await openSource(pinSource(source)); // pinned before any await: the caller may close its fd
  try {
    if (signal?.aborted) throw abortError(signal, 0);
    const size = (await fstat(input.fd)).size;
    const start = Math.min(offset, size);
    const count = length < 0 ? size - start : Math.min(length, size - start);
    if (!hasHeader(headers, 'content-type') && !res.hasHeader('content-type') && 'path' in source) {
      headers['content-type'] = contentType(source.path);
    }
    return await respond(res, input, start, count, statusCode, headers, signal);
  } finally {
    await input.close();
  }
}

/** Options for {@link serveFile}. */
export interface ServeFileOptions {
  /**
   * The directory files are served from. `path` is then the request's URL
   * path (percent-encoded, a query string is ignored), and nothing outside
   * root is ever served: `..` segments (also percent-encoded) get 403, NUL
   * bytes and malformed encodings 400, and a file whose real path (after
   * symlinks) leaves root 404. Without root, `path` is a file system path
   * used as it is (NUL and `..` segments are still refused).
   *
   * Confinement is checked on the opened file, not on its name: on Linux
   * the kernel's name for the open descriptor (`/proc/self/fd/N`);
   * elsewhere `realpath` of the name, accepted only if it still names the
   * opened file (same device and inode). The open-file cache records the
   * real root each check was made for and checks again for any other root.
   * See docs/http.md, "Security".
   */
  root?: string;
  /**
   * Files and directories whose names start with a dot (`.env`, `.git/`,
   * `.well-known/`): any segment of the request path relative to root (of
   * the whole path without root), after percent-decoding, as `send` and
   * `serve-static` judge it; root's own path does not count.
   * `'ignore'` (the default): 404, as if absent. `'deny'`: 403.
   * `'allow'`: served like any other file. Only names are judged: a symlink
   * without a leading dot that points at a dotfile is served (if it stays
   * inside root).
   * @throws TypeError `ERR_INVALID_ARG_TYPE` when not a string,
   *   `ERR_INVALID_ARG_VALUE` when not one of the three.
   */
  dotfiles?: 'ignore' | 'deny' | 'allow';
  /**
   * Send a weak ETag (size and mtime). Default true. If-None-Match compares
   * weakly, If-Match and If-Range strongly (so never match it): see
   * docs/http.md. Without it, an If-Match list never matches (412).
   */
  etag?: boolean;
  /** Send Last-Modified and honour If-Modified-Since / If-Unmodified-Since. Default true. */
  lastModified?: boolean;
  /** Cache-Control max-age in **seconds**. Default 0. */
  maxAge?: number;
  /**
   * The open-file cache (Linux): descriptors and metadata of recently served
   * files stay open, like nginx's `open_file_cache`, so a repeated request
   * costs no open, no thread hop and no `realpath`. Every hit is revalidated
   * on the JS thread before anything is sent: `stat(path)` must still name
   * the cached file (same device and inode, else the path was replaced and
   * is opened afresh; gone: 404), its size and mtime (for Content-Length,
   * ETag and Last-Modified) are taken fresh from that stat, and the
   * descriptor's real path is checked against root again (at most once a
   * second per file while requests name the same root: a file moved out of
   * root and linked back at its old name is refused within a second; a
   * request with another root, or the first with a root after one without,
   * is always checked). File bytes are
   * never cached: they are read from the live file at send time, so a file
   * modified in place, truncated or replaced is never served stale. (While
   * the descriptor is open its inode number cannot be reused, so device and
   * inode identify the file exactly; files with inode numbers beyond 2^53
   * are not cached.)
   *
   * With the cache, a small body (at most 256 KiB) that the page cache holds
   * is read on the JS thread with `preadv2(RWF_NOWAIT)` (a copy from the
   * page cache that fails rather than wait for the disk) and written with
   * the headers in one `res.end()`: `zeroCopy: false`. Other bodies go as
   * before (zero-copy, off the loop).
   *
   * `true` (the default) uses `{ maxEntries: 256, maxBytes: 64 MiB }`;
   * `false` opens, checks and closes the file on every request. Calls with
   * the same limits share one cache per thread (at most 4 distinct caches;
   * the least recently used is closed for a fifth). Entries idle for 60 s
   * are closed. Turn it off where `stat` can wait on a server (NFS, FUSE).
   */
  cache?: boolean | ServeFileCacheOptions;
}

/** Limits of {@link ServeFileOptions.cache}. */
export interface ServeFileCacheOptions {
  /** Open descriptors kept, 1..65536. Default 256. */
  maxEntries?: number;
  /**
   * The sum of the sizes of the files kept open, in bytes (their disk space
   * stays allocated while open, even after they are deleted, until their
   * next request or idle expiry closes them). A file larger than this is
   * never cached. Default 64 MiB.
   */
  maxBytes?: number;
}

/** What {@link serveFile} resolves with. */
export interface ServeFileResult {
  /** The status sent: 200, 206, 304, 400, 403, 404, 405, 412, 416 or 500 (403/404 also for dotfiles, see {@link ServeFileOptions.dotfiles}). */
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

/**
 * Answers a GET or HEAD request with a file, as a static file server does.
 *
 * - Methods: GET and HEAD; others get 405 with `Allow: GET, HEAD`.
 * - Validators (RFC 9110 13): a weak ETag from size and mtime and
 *   Last-Modified; If-None-Match (weak comparison) / If-Modified-Since give
 *   304, If-Match (strong comparison: never matches the weak ETag, except
 *   `*`) / If-Unmodified-Since give 412. Dates are HTTP-dates in any of the
 *   three forms, as GMT; an invalid or repeated date header is ignored.
 * - Ranges, on GET only (HEAD gets 200 and the full length): one byte range
 *   (`bytes=a-b`, `bytes=a-`, `bytes=-n`) gives 206 with Content-Range; a
 *   range that starts past the end (or a suffix of 0) gives 416 with
 *   `Content-Range: bytes *\/size`; several ranges, or a malformed header,
 *   give 200 with the whole file, as does a suffix range of an empty file;
 *   If-Range (strong comparison, or the exact Last-Modified date) is honoured.
 * - The path may be a request target in origin-form or absolute-form
 *   (`http://host/path`); `*` and authority-form get 400.
 * - Content-Type from the extension (see `contentType`), Accept-Ranges,
 *   Cache-Control `public, max-age=<maxAge>`.
 * - Confinement to `options.root`, see {@link ServeFileOptions.root};
 *   dotfiles are 404 unless allowed, see {@link ServeFileOptions.dotfiles}.
 *   Directories, devices and FIFOs get 404; unreadable files 403; other
 *   failures to open 500. Error responses have a short text body.
 *
 * The file is opened on pagewarm's threads (O_NONBLOCK, so a FIFO cannot
 * hang it; the libuv threadpool in the portable fallback) and the body is
 * sent as {@link sendFileResponse} does, except where the open-file cache
 * answers: a repeated request is revalidated with one `stat` on the JS
 * thread instead of being opened again, and a small resident body is read
 * from the page cache and written with the headers in one `res.end()` (see
 * {@link ServeFileOptions.cache}).
 *
 * @param req The request (its method and headers are read).
 * @param res Its response, headers not yet sent.
 * @param path The URL path under `root` (e.g. `req.url`), or a file path without `root`.
 * @returns `{ statusCode, bytes, zeroCopy }`.
 * @throws (as a rejection) TypeError / RangeError for bad arguments; `ERR_HTTP_HEADERS_SENT`;
 *   the errors of `sendFile` when the client goes away during the body (the connection
 *   is then destroyed). Problems with the file itself are answered, not thrown.
 */
export async function serveFile(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  path: string,
  options?: ServeFileOptions,
): Promise<ServeFileResult> {
  if (typeof req !== 'object' || req === null || typeof req.headers !== 'object' || req.headers === null) {
    throw invalidArgType('req', 'an instance of http.IncomingMessage', req);
  }
  checkResponse(res);
  if (typeof path !== 'string') throw invalidArgType('path', 'of type string', path);
  const opts = toOptions<ServeFileOptions>(options);
  if (opts.root !== undefined && typeof opts.root !== 'string') throw invalidArgType('options.root', 'of type string', opts.root);
  const useEtag = toBoolean(opts.etag, 'options.etag', true);
  const useLastModified = toBoolean(opts.lastModified, 'options.lastModified', true);
  const maxAge = opts.maxAge === undefined ? 0 : toIntInRange(opts.maxAge, 'options.maxAge', 0, 2 ** 31 - 1);
  const dotfiles = toDotfiles(opts.dotfiles);
  const cache = cacheFor(opts.cache);
  if (res.headersSent) throw headersSent();

  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') return fail(res, 405, { allow: 'GET, HEAD' });

  const target = resolveTarget(path, opts.root);
  if (typeof target === 'number') return fail(res, target);
  // The directory the path was joined to, taken now (synchronously after
  // resolveTarget) and used for every check of this request.
  const base = opts.root === undefined ? undefined : baseOf(opts.root);
  // Judged on every request, before the cache: an entry kept for an
  // 'allow' call never answers an 'ignore' one.
  if (dotfiles !== 'allow' && hasDotSegment(requestPart(target, base))) return fail(res, dotfiles === 'deny' ? 403 : 404);
  const served: Served = { req, res, target, root: opts.root, useEtag, useLastModified, maxAge };

  if (cache) {
    const hit = cache.lookup(target, base);
    if (hit) {
      try {
        const r = await serveOpen(served, hit.entry.input.fd, hit.meta, hit.entry);
        if (r !== RETRY) return r;
      } finally {
        cache.release(hit.entry);
      }
      cache.drop(target); // the file changed under the fast path: serve it afresh
    }
  }

  let input: Input;
  try {
    input = await openPath(target); // a FIFO, directory or device is refused here
  } catch (err) {
    return fail(res, statusForOpenError(err));
  }
  let entry: Entry | undefined;
  try {
    // The real root the file was found inside: the cache records it with the
    // entry, as the only root this check stands for.
    let confinedTo: string | undefined;
    if (base !== undefined) {
      confinedTo = await confined(input.fd, target, base);
      if (confinedTo === undefined) return fail(res, 404);
    }
    let meta: Meta;
    try {
      meta = toMeta(await fstat(input.fd));
    } catch (err) {
      return fail(res, statusForOpenError(err));
    }
    if (!meta.isFile) return fail(res, 404);
    entry = cache?.insert(target, input, meta, confinedTo); // the cache owns the descriptor from here
    const r = await serveOpen(served, input.fd, meta, cache ? entry ?? { cached: false } : false);
    if (r !== RETRY) return r;
    // The file changed between fstat and the read: describe it again, and
    // answer without the fast path (which is the only one that retries).
    if (entry) cache!.drop(target);
    try {
      meta = toMeta(await fstat(input.fd));
    } catch (err) {
      return fail(res, statusForOpenError(err));
    }
    return (await serveOpen(served, input.fd, meta, false)) as ServeFileResult;
  } finally {
    if (entry) cache!.release(entry);
    else await input.close();
  }
}

/** What serveFile was asked to do. */
interface Served {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  target: string;
  root: string | undefined;
  useEtag: boolean;
  useLastModified: boolean;
  maxAge: number;
}

/** What a response needs to know about a regular file (from stat or fstat). */
interface Meta {
  isFile: boolean;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  /** Header values derived from the fields above, made once per Meta (a cache hit reuses its entry's Meta while size and mtime hold). */
  derived?: Derived;
}

/** Validator and type header values for one version of one file. */
interface Derived {
  etag: string;
  /** mtime in whole seconds (HTTP dates have no more). */
  mtime: number;
  lastModified: string;
  contentType: string;
}

function derive(meta: Meta, target: string): Derived {
  const mtimeMs = Math.floor(meta.mtimeMs);
  const mtime = Math.floor(mtimeMs / 1000);
  return {
    etag: `W/"${meta.size.toString(16)}-${mtimeMs.toString(16)}"`,
    mtime,
    lastModified: new Date(mtime * 1000).toUTCString(),
    contentType: contentType(target),
  };
}

function toMeta(st: fs.Stats): Meta {
  return { isFile: st.isFile(), dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
}

/** serveOpen's answer when the file changed while it was read: start over. */
const RETRY = Symbol('retry');

/** Bodies up to this size may be read on the JS thread when resident (with the cache). */
const FAST_MAX = 256 << 10;
/**
 * Reused FAST_MAX-byte buffers for those bodies (above SLAB_MIN bytes; smaller
 * ones come from Node's own pool), returned once res.end()'s callback says the
 * bytes are in the kernel: at most MAX_SLABS (4 MiB) kept.
 */
const slabs: Buffer[] = [];
const SLAB_MIN = 8 << 10;
const MAX_SLABS = 16;

/**
 * How a small body may be sent: `false`, never read on the JS thread; else
 * it may be, and `cached` says whether the last read of this file there
 * found its range in the page cache (then it is read straight away, else
 * cachestat is asked first: a read of an uncached range, though it never
 * waits, would start the disk's readahead from the event loop).
 */
type FastPath = false | { cached: boolean };

/** The response for an open, checked regular file: validators, ranges, the body. */
async function serveOpen(s: Served, fd: number, meta: Meta, fast: FastPath): Promise<ServeFileResult | typeof RETRY> {
  const { req, res, useEtag, useLastModified, maxAge } = s;
  const size = meta.size;
  const { etag, mtime, lastModified, contentType: type } = (meta.derived ??= derive(meta, s.target));
  const headers: http.OutgoingHttpHeaders = {
    'cache-control': maxAge === 0 ? 'public, max-age=0' : `public, max-age=${maxAge}`,
  };
  if (useEtag) headers.etag = etag;
  // Never a Last-Modified later than the response's Date (RFC 9110 8.8.2.1):
  // a file dated in the future is sent as modified now, with that same Date
  // (Node's own Date string is refreshed by a timer, and may lag a second).
  const now = Date.now();
  if (useLastModified) {
    if (mtime * 1000 > now) headers.date = headers['last-modified'] = new Date(now).toUTCString();
    else headers['last-modified'] = lastModified;
  }

  // Preconditions and Range, RFC 9110 13.2.2 and 14.2 (see http-conditional.ts).
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

  headers['accept-ranges'] = 'bytes';
  headers['content-type'] = type;
  let statusCode = 200;
  let start = 0;
  let count = size;
  const range = selectRange(method, field(req, 'range'), field(req, 'if-range'), v, size, now);
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
    // A slab is reused once res.end() calls back; only a direct response
    // guarantees its bytes are in the kernel by then. Middleware that
    // replaced write/end may keep the chunk and call back at once.
    const slab = count > SLAB_MIN && directBody(res) ? slabs.pop() ?? Buffer.allocUnsafeSlow(FAST_MAX) : undefined;
    const body = slab ? slab.subarray(0, count) : Buffer.allocUnsafe(count);
    const got = fast.cached || !fastPathAvailable || resident(fd, start, count) ? readResident(fd, body, start) : NOT_CACHED;
    fast.cached = got === count;
    if (got === count) {
      headers['content-length'] = count;
      res.writeHead(statusCode, headers);
      await endResponse(res, body, () => {
        // The body is in the kernel now: the slab can serve another response.
        if (slab && slabs.length < MAX_SLABS) slabs.push(slab);
      });
      return { statusCode, bytes: count, zeroCopy: false };
    }
    if (slab) slabs.push(slab);
    // A short read of a range the cache holds (or none at all) is a file
    // truncated since the stat: start over.
    if (got !== NOT_CACHED) return RETRY;
  }
  const sent = await respond(res, { fd, close: async () => undefined }, start, count, statusCode, headers, undefined);
  return { statusCode, bytes: sent.bytes, zeroCopy: sent.zeroCopy };
}

/**
 * A request header for http-conditional.ts: every received line
 * (`req.headersDistinct`), since Node keeps only the first of a repeated
 * If-Modified-Since and joins repeated If-Range lines with commas, and a
 * field received twice must be told apart (RFC 9110 13.1.3, 13.1.4).
 */
function field(req: http.IncomingMessage, name: string): FieldValue {
  const value = req.headers[name];
  if (value === undefined) return undefined;
  return req.headersDistinct?.[name] ?? value;
}

/** readResident's answer when the page cache does not hold the whole range (or it cannot tell). */
const NOT_CACHED = -1;

/**
 * Fills `body` from the file at `start` if the page cache holds the whole
 * range, without ever waiting for the disk: the byte count (less than
 * body.length when the file has become shorter, or when only the start of
 * the range is cached), or NOT_CACHED when the start is not cached.
 *
 * preadv2(RWF_NOWAIT) only: cachestat and mincore count a page whose read
 * is still in flight as cached, so "check, then read" could wait on the JS
 * thread for another reader's disk read. Where the file system cannot read
 * without waiting (EOPNOTSUPP: tmpfs, some network and FUSE file systems),
 * or off the native binding, the range is NOT_CACHED and goes to
 * pagewarm's threads like any other.
 */
function readResident(fd: number, body: Buffer, start: number): number {
  if (!nowaitReads) return NOT_CACHED;
  const got = binding.readCached(fd, body, 0, body.length, start);
  // A short count is the end of the file or a later page not cached: the
  // caller starts over either way, which is right for both.
  if (!isNativeFailure(got)) return got;
  if (got.errno === EAGAIN || got.errno === EOPNOTSUPP || got.errno === EINVAL) return NOT_CACHED;
  return 0; // an error reading: treat as changed, start over
}

/** Whether cachestat(2) reports `[start, start + count)` fully resident (never true when it cannot tell). */
function resident(fd: number, start: number, count: number): boolean {
  if (!fastPathAvailable) return false;
  const r = binding.residencySync(fd, start, count);
  return !isNativeFailure(r) && r.source !== 'unknown' && r.resident !== null && r.resident >= r.pages;
}
const fastPathAvailable = binding.capabilities().nowaitReads && binding.capabilities().cachestat;
const nowaitReads = binding.capabilities().nowaitReads;
const { EAGAIN, EOPNOTSUPP, EINVAL } = osConstants.errno;

// ---------------------------------------------------------------------------
// The open-file cache.

/** One cached file: its descriptor (owned by the cache) and what stat said. */
interface Entry {
  key: string;
  input: Input;
  meta: Meta;
  /** Requests using the descriptor now: it is closed only at 0. */
  refs: number;
  /** Out of the cache: close once refs reaches 0. */
  dropped: boolean;
  lastUsed: number;
  /** The last read on the JS thread found the range in the page cache (see {@link FastPath}). */
  cached: boolean;
  /**
   * The real root the descriptor's real path was last found inside, or
   * undefined if no root was ever checked (a call without root inserted
   * it). A lookup with any other root checks again: a proof made for one
   * root never stands for another (a wider one, or none at all).
   */
  confinedTo: string | undefined;
  /** When that was (Date.now()). */
  confinedAt: number;
}

/**
 * How long a cached descriptor's confinement to a root is taken as known,
 * for that root only (Entry.confinedTo). Its identity (stat: same device
 * and inode) is checked on every hit; whether that file still lies inside
 * the root (a readlink of /proc/self/fd/N, one more system call per hit) at
 * most this often. What the window allows: the very
 * file that was served, moved out of root and linked back by a symlink at
 * its old name, is still served for up to this long. A different file at
 * the name (a symlink swapped to point elsewhere) fails the identity check
 * at once and is opened and checked afresh.
 */
const CONFINE_RECHECK_MS = 1000;

/** revalidate()'s answer: [dev, ino, size, mtimeMs, isFile]. One per thread, used synchronously. */
const statScratch = new Float64Array(5);

const DEFAULT_MAX_ENTRIES = 256;
const DEFAULT_MAX_BYTES = 64 << 20;
const MAX_CACHES = 4;
const IDLE_MS = 60_000;

/** An LRU of open files, bounded in entries and in the sum of their sizes. */
class OpenFileCache {
  private readonly entries = new Map<string, Entry>(); // in LRU order, oldest first
  private bytes = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    readonly maxEntries: number,
    readonly maxBytes: number,
  ) {}

  /**
   * A cached file that `target` still names, revalidated now (synchronously):
   * same device and inode by stat(target), fresh metadata, and (with a root:
   * `base`, the directory the request path was joined to) the descriptor's
   * real path inside that root's real path, checked again unless the last
   * check was for this very root and less than CONFINE_RECHECK_MS ago.
   * Anything else drops the entry.
   */
  lookup(target: string, base: string | undefined): { entry: Entry; meta: Meta } | undefined {
    const entry = this.entries.get(target);
    if (!entry) return undefined;
    const now = Date.now();
    let realRoot: string | null = null;
    if (base !== undefined) {
      const known = realRoots.get(base);
      if (known === undefined) {
        this.drop(target);
        return undefined;
      }
      if (entry.confinedTo !== known || now - entry.confinedAt >= CONFINE_RECHECK_MS) realRoot = known;
    }
    const st = statScratch;
    const status = binding.revalidate(target, entry.input.fd, realRoot, st);
    // Gone, replaced (another inode now has the name), no longer a regular
    // file, or its descriptor's file is no longer inside root: drop it.
    if (status !== 0 || st[0] !== entry.meta.dev || st[1] !== entry.meta.ino || st[4] !== 1) {
      this.drop(target);
      return undefined;
    }
    let meta = entry.meta;
    if (st[2] !== meta.size || st[3] !== meta.mtimeMs) {
      this.bytes += st[2] - meta.size;
      meta = { isFile: true, dev: meta.dev, ino: meta.ino, size: st[2], mtimeMs: st[3] };
      entry.meta = meta;
    }
    if (realRoot !== null) {
      entry.confinedTo = realRoot;
      entry.confinedAt = now;
    }
    entry.refs++;
    entry.lastUsed = now;
    this.entries.delete(target); // most recently used: last
    this.entries.set(target, entry);
    this.trim(entry);
    return { entry, meta };
  }

  /**
   * Takes over an opened file (in use by the caller: release() it), unless
   * it is too large or already cached. `confinedTo`: the real root the
   * caller found the file inside just now (undefined: none was checked).
   */
  insert(target: string, input: Input, meta: Meta, confinedTo: string | undefined): Entry | undefined {
    // Inode numbers beyond 2^53 would not compare exactly as numbers: not cached.
    if (meta.size > this.maxBytes || this.entries.has(target) || !Number.isSafeInteger(meta.ino) || !Number.isSafeInteger(meta.dev)) {
      return undefined;
    }
    const now = Date.now();
    const entry: Entry = { key: target, input, meta, refs: 1, dropped: false, lastUsed: now, cached: false, confinedTo, confinedAt: now };
    this.entries.set(target, entry);
    this.bytes += meta.size;
    this.trim(entry);
    this.sweeper ??= setInterval(() => this.sweep(), IDLE_MS / 2).unref();
    return entry;
  }

  release(entry: Entry): void {
    entry.refs--;
    if (entry.dropped && entry.refs === 0) void entry.input.close().catch(() => undefined);
  }

  drop(target: string): void {
    const entry = this.entries.get(target);
    if (!entry) return;
    this.entries.delete(target);
    this.bytes -= entry.meta.size;
    entry.dropped = true;
    if (entry.refs === 0) void entry.input.close().catch(() => undefined);
    if (this.entries.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  clear(): void {
    for (const key of [...this.entries.keys()]) this.drop(key);
  }

  /** Evicts the least recently used entries beyond the limits (`keep` itself only if it alone exceeds them). */
  private trim(keep: Entry): void {
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) break;
      if (e !== keep) this.drop(key);
    }
    if (this.bytes > this.maxBytes) this.drop(keep.key);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, e] of this.entries) if (e.refs === 0 && now - e.lastUsed >= IDLE_MS) this.drop(key);
  }
}

const caches = new Map<string, OpenFileCache>(); // by limits, least recently used first

/**
 * Closes the descriptors {@link serveFile}'s open-file cache keeps on this
 * thread (see {@link ServeFileOptions.cache}): for a clean shutdown after
 * `server.close()`, or before counting open descriptors. A file still being
 * sent is closed when its send ends. The cache fills again with the next
 * request; nothing else changes.
 */
export function closeServeFileCache(): void {
  for (const cache of caches.values()) cache.clear();
}
const DEFAULT_KEY = `${DEFAULT_MAX_ENTRIES}/${DEFAULT_MAX_BYTES}`;
let defaultCache: OpenFileCache | undefined;

/** The cache for serveFile's `cache` option, or undefined when off. Validates the option. */
function cacheFor(option: unknown): OpenFileCache | undefined {
  if (option === false) return undefined;
  if ((option === undefined || option === true) && defaultCache && caches.size === 1 && caches.get(DEFAULT_KEY) === defaultCache) {
    return defaultCache;
  }
  let maxEntries = DEFAULT_MAX_ENTRIES;
  let maxBytes = DEFAULT_MAX_BYTES;
  if (option !== undefined && option !== true) {
    if (typeof option !== 'object' || option === null) {
      throw invalidArgType('options.cache', 'of type boolean or object', option);
    }
    const o = option as ServeFileCacheOptions;
    if (o.maxEntries !== undefined) maxEntries = toIntInRange(o.maxEntries, 'options.cache.maxEntries', 1, 65536);
    if (o.maxBytes !== undefined) maxBytes = toIntInRange(o.maxBytes, 'options.cache.maxBytes', 0, Number.MAX_SAFE_INTEGER);
  }
  if (process.platform !== 'linux') return undefined; // the hit check reads /proc/self/fd
  const key = `${maxEntries}/${maxBytes}`;
  let cache = caches.get(key);
  if (cache) {
    if (caches.size > 1) {
      caches.delete(key);
      caches.set(key, cache);
    }
    return cache;
  }
  cache = new OpenFileCache(maxEntries, maxBytes);
  caches.set(key, cache);
  if (key === DEFAULT_KEY) defaultCache = cache;
  for (const [k, c] of caches) {
    if (caches.size <= MAX_CACHES) break;
    caches.delete(k);
    c.clear();
  }
  return cache;
}

// ---------------------------------------------------------------------------
// Writing the response.

function checkResponse(res: unknown): asserts res is http.ServerResponse {
  if (typeof res !== 'object' || res === null || typeof (res as http.ServerResponse).writeHead !== 'function' ||
      typeof (res as http.ServerResponse).end !== 'function') {
    throw invalidArgType('res', 'an instance of http.ServerResponse', res);
  }
}

function toHeaders(value: unknown): http.OutgoingHttpHeaders {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object') throw invalidArgType('options.headers', 'of type object', value);
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, v] of Object.entries(value as http.OutgoingHttpHeaders)) {
    if (v !== undefined) out[name.toLowerCase()] = v;
  }
  return out;
}

function hasHeader(headers: http.OutgoingHttpHeaders, name: string): boolean {
  return headers[name] !== undefined;
}

function coded(code: string, message: string, extra?: object): CodedError {
  const err = new Error(message) as CodedError;
  err.code = code;
  return Object.assign(err, extra);
}

function headersSent(): CodedError {
  return coded('ERR_HTTP_HEADERS_SENT', 'Cannot send a file response after the headers were sent to the client');
}

function fstat(fd: number): Promise<fs.Stats> {
  return new Promise((resolve, reject) => fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st))));
}



/** Whether the body may bypass `res.write()` and go to the socket. */
function directBody(res: http.ServerResponse): boolean {
  if (!(res instanceof http.ServerResponse)) return false; // HTTP/2 compatibility, look-alikes
  for (const name of ['write', 'end', '_send', '_writeRaw']) {
    if (Object.prototype.hasOwnProperty.call(res, name)) return false; // middleware transforms the body
  }
  return true;
}

/**
 * The response's socket, once it has one (a pipelined response waits for
 * the one before it). An abort while waiting rejects (nothing written).
 */
function socketOf(res: http.ServerResponse, signal: AbortSignal | undefined): Promise<net.Socket> {
  if (res.socket) return Promise.resolve(res.socket as net.Socket);
  return new Promise((resolve, reject) => {
    const settle = (): void => {
      res.removeListener('socket', onSocket);
      res.removeListener('close', onClose);
      offAbort?.();
    };
    const onSocket = (socket: net.Socket): void => {
      settle();
      // Resolving defers to a microtask: assignSocket() has flushed by then.
      resolve(socket);
    };
    const onClose = (): void => {
      settle();
      reject(coded('ERR_STREAM_DESTROYED', 'The response was closed before it got its connection', { bytesSent: 0 }));
    };
    res.once('socket', onSocket);
    res.once('close', onClose);
    const offAbort = signal && whenAborted(signal, () => {
      settle();
      reject(abortError(signal, 0));
    });
  });
}

function ended(res: http.ServerResponse): Promise<void> {
  return endResponse(res, undefined);
}

/**
 * `res.end(body)`, resolved when its callback runs (`written` is called
 * first) or when the response closes, whichever comes first; no listener is
 * left on the response either way.
 */
function endResponse(res: http.ServerResponse, body: Buffer | undefined, written?: () => void): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.removeListener('close', done);
      resolve();
    };
    res.once('close', done);
    const callback = (): void => {
      written?.();
      done();
    };
    if (body) res.end(body, callback);
    else res.end(callback);
  });
}

async function respond(
  res: http.ServerResponse,
  input: Input,
  offset: number,
  count: number,
  statusCode: number,
  headers: http.OutgoingHttpHeaders,
  signal: AbortSignal | undefined,
): Promise<SendFileResult> {
  if (signal?.aborted) throw abortError(signal, 0);
  delete headers['transfer-encoding'];
  const method = res.req?.method;
  const bodyless = method === 'HEAD' || statusCode === 204 || statusCode === 304 || statusCode < 200;
  if (statusCode === 204 || statusCode === 304 || statusCode < 200) delete headers['content-length'];
  else headers['content-length'] = count;
  if (bodyless || count === 0) {
    res.writeHead(statusCode, headers);
    await ended(res);
    return { bytes: 0, zeroCopy: false };
  }

  if (!directBody(res)) return writeBody(res, input.fd, offset, count, statusCode, headers, signal);

  const socket = await socketOf(res, signal);
  if (res.headersSent) throw headersSent();
  if (signal?.aborted) throw abortError(signal, 0); // nothing written yet: the response is the caller's
  // The body bypasses res.write(): Node's own length check would see 0 bytes.
  if (res.strictContentLength) res.strictContentLength = false;
  res.writeHead(statusCode, headers);
  res.flushHeaders(); // the status line and headers are now queued on the socket, before the body
  let result: SendFileResult;
  // From here to sendOwnedFile's first check of the signal all is synchronous:
  // an abort is either seen above or delivered to the send.
  const link = linkedSignal(signal);
  try {
    result = await sendOwnedFile(socket, input.fd, offset, count, link.signal);
  } catch (err) {
    if (!socket.destroyed) socket.destroy(); // headers went out, the body cannot be completed
    throw err;
  } finally {
    link.done();
  }
  if (result.bytes < count) {
    socket.destroy();
    throw coded(
      'ERR_HTTP_CONTENT_LENGTH_MISMATCH',
      `Response body's content-length of ${result.bytes} byte(s) does not match the content-length of ${count} byte(s) set in header`,
      { bytesSent: result.bytes },
    );
  }
  await ended(res);
  return result;
}

/** The copying path: the body through res.write(), honouring backpressure. */
async function writeBody(
  res: http.ServerResponse,
  fd: number,
  offset: number,
  count: number,
  statusCode: number,
  headers: http.OutgoingHttpHeaders,
  signal: AbortSignal | undefined,
): Promise<SendFileResult> {
  if (signal?.aborted) throw abortError(signal, 0); // nothing written yet: the response is the caller's
  res.writeHead(statusCode, headers);
  const piece = 256 << 10;
  let sent = 0;
  const fail = (err: unknown): never => {
    res.destroy();
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { bytesSent: sent });
  };
  while (sent < count) {
    if (signal?.aborted) fail(abortError(signal, sent));
    if (res.destroyed) fail(coded('ERR_STREAM_DESTROYED', 'The response was destroyed during the body'));
    const buf = Buffer.allocUnsafe(Math.min(piece, count - sent));
    let got: number;
    try {
      got = await new Promise<number>((resolve, reject) =>
        fs.read(fd, buf, 0, buf.length, offset + sent, (err, n) => (err ? reject(err) : resolve(n))));
    } catch (err) {
      return fail(err);
    }
    if (signal?.aborted) fail(abortError(signal, sent)); // aborted during the read
    if (got === 0) {
      fail(coded('ERR_HTTP_CONTENT_LENGTH_MISMATCH',
        `Response body's content-length of ${sent} byte(s) does not match the content-length of ${count} byte(s) set in header`));
    }
    const more = res.write(buf.subarray(0, got));
    sent += got;
    if (!more && sent < count) {
      // Wait for 'drain', the response closing, or an abort (a client that
      // stopped reading must not hold an aborted response): the loop's
      // checks then say which.
      await new Promise<void>((resolve) => {
        const go = (): void => {
          res.removeListener('drain', go);
          res.removeListener('close', go);
          offAbort?.();
          resolve();
        };
        res.once('drain', go);
        res.once('close', go);
        const offAbort = signal && whenAborted(signal, go);
      });
    }
  }
  await ended(res);
  return { bytes: sent, zeroCopy: false };
}

/** An error or empty response with a short text body. */
async function fail(res: http.ServerResponse, statusCode: number, extra: http.OutgoingHttpHeaders = {}): Promise<ServeFileResult> {
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

async function notModified(res: http.ServerResponse, headers: http.OutgoingHttpHeaders): Promise<ServeFileResult> {
  res.writeHead(304, headers);
  await ended(res);
  return { statusCode: 304, bytes: 0, zeroCopy: false };
}

// ---------------------------------------------------------------------------
// Paths and confinement.

/** `resolve(root)` per root string, at most 64. */
const resolvedRoots = new Map<string, string>();

/** The file system path for a request path, or the status that refuses it. */
function resolveTarget(path: string, root: string | undefined): string | number {
  let p = path;
  if (root !== undefined) {
    const pathOnly = requestPath(p); // origin-form, absolute-form; the others: 400
    if (typeof pathOnly === 'number') return pathOnly;
    p = pathOnly;
    if (p.includes('%')) {
      try {
        p = decodeURIComponent(p);
      } catch {
        return 400; // malformed percent-encoding
      }
    }
  }
  if (p.includes('\0')) return 400;
  // Backslashes are not separators on Linux, but a "..\\" is never a
  // legitimate request either: refuse dot-dot segments split on both.
  if (p.includes('..') && p.split(/[\\/]/).includes('..')) return 403;
  if (root === undefined) return p === '' ? 404 : p;
  let base = resolvedRoots.get(root);
  if (base === undefined) {
    base = resolvePath(root); // relative roots resolve against the cwd of their first use
    if (resolvedRoots.size >= 64) resolvedRoots.clear();
    resolvedRoots.set(root, base);
  }
  const full = join(base, p);
  if (full !== base && !full.startsWith(base.endsWith(sep) ? base : base + sep)) return 403;
  return full;
}

/**
 * The directory a root's request paths are joined to: resolveTarget's
 * `resolve(root)`, made at the root's first use (resolveTarget has just
 * made it, synchronously, whenever this is asked).
 */
function baseOf(root: string): string {
  return resolvedRoots.get(root) ?? resolvePath(root);
}

/**
 * The real path of each root directory (by baseOf(root): the directory the
 * request path was joined to, never root resolved again against a cwd that
 * may have changed since), resolved once (and again when a check fails
 * against it, in case root was moved or relinked). Bounded: at most 64 roots.
 */
const realRoots = new Map<string, string>();

async function realRootOf(base: string, fresh: boolean): Promise<string | undefined> {
  let real = fresh ? undefined : realRoots.get(base);
  if (real !== undefined) return real;
  try {
    real = await realpath(base);
  } catch {
    realRoots.delete(base);
    return undefined;
  }
  if (realRoots.size >= 64) realRoots.clear();
  realRoots.set(base, real);
  return real;
}

/**
 * The real root that the file actually opened (after every symlink) lies
 * inside, or undefined when it lies outside root or its location cannot be
 * known for certain. Judged on the descriptor (see descriptorRealPath), not
 * on the name, which may lead elsewhere by now.
 */
async function confined(fd: number, opened: string, base: string): Promise<string | undefined> {
  const real = await descriptorRealPath(fd, opened);
  if (real === undefined) return undefined;
  const realRoot = await realRootOf(base, false);
  if (realRoot !== undefined && inside(real, realRoot)) return realRoot;
  const again = await realRootOf(base, true);
  return again !== undefined && again !== realRoot && inside(real, again) ? again : undefined;
}

/** The dotfiles option, validated. */
function toDotfiles(value: unknown): 'ignore' | 'deny' | 'allow' {
  if (value === undefined) return 'ignore';
  if (typeof value !== 'string') throw invalidArgType('options.dotfiles', 'of type string', value);
  if (value !== 'ignore' && value !== 'deny' && value !== 'allow') {
    throw invalidArgValue('options.dotfiles', value, "must be one of: 'ignore', 'deny', 'allow'");
  }
  return value;
}

/**
 * The part of a resolved target that the request named: the path below
 * `base`, the directory it was joined to (the whole path without root).
 */
function requestPart(target: string, base: string | undefined): string {
  if (base === undefined) return target;
  return target.startsWith(base) ? target.slice(base.length) : target;
}

/** Whether a path has a segment starting with a dot, other than `.` itself (send's containsDotFile). */
function hasDotSegment(path: string): boolean {
  if (!path.includes('.')) return false;
  return path.split('/').some((part) => part.length > 1 && part[0] === '.');
}

function statusForOpenError(err: unknown): number {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ENAMETOOLONG':
    case 'ELOOP':
    case 'ENXIO': // a socket
    case 'EISDIR': // a directory
    case 'ESPIPE': // a FIFO
    case 'EINVAL': // a character device
      return 404;
    case 'EACCES':
    case 'EPERM':
      return 403;
    default:
      return 500;
  }
}
