/**
 * `serveFile`: a static file server's GET/HEAD handling (ranges,
 * validators, confinement to a root, the open-file cache). This module is
 * the orchestration; each step is its own module:
 * confine.ts (the path and root), file-cache.ts (open descriptors kept),
 * answer.ts (validators, preconditions, range; error responses),
 * fast-body.ts (small resident bodies), response.ts (writing the response).
 */
import type * as http from 'node:http';
import { openPath, type Input } from '../send/socket';
import { invalidArgType } from '../core/errors';
import { toBoolean, toIntInRange, toOptions } from '../core/validate';
import { RETRY, fail, serveOpen, type ServeFileResult, type Served } from './answer';
import { baseOf, confined, hasDotSegment, requestPart, resolveTarget, toDotfiles } from './confine';
import { cacheFor, type Entry, type ServeFileCacheOptions } from './file-cache';
import { fstat, toMeta, type Meta } from './file-meta';
import { checkResponse, headersSent } from './response';

/** @internal */
export { parseRange } from './conditional';

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

/** The status for a file that could not be opened or described: 404, 403 (permission) or 500. */
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
