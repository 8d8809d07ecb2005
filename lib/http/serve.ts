/**
 * `serveFile`: a static file server's GET/HEAD handling (ranges,
 * validators, confinement to a root, the open-file cache, precompressed
 * variants). This module is the orchestration; each step is its own module:
 * options.ts (the options, validated into a plan), confine.ts (the path and
 * root), file-cache.ts (open descriptors kept), encoding.ts (which
 * precompressed variant), answer.ts (validators, preconditions, range; error
 * responses), fast-body.ts (small resident bodies), response.ts (writing the
 * response). serveStatic (static.ts) builds on {@link serveTarget}.
 */
import type * as http from 'node:http';
import { openPath, type Input } from '../send/socket';
import { invalidArgType } from '../core/errors';
import { RETRY, fail, serveOpen, type ServeFileResult, type Served } from './answer';
import { baseOf, confined, hasDotSegment, requestPart, resolveTarget } from './confine';
import { acceptedEncodings, SUFFIX, type Encoding } from './encoding';
import type { Entry, OpenFileCache } from './file-cache';
import { fstat, toMeta, type Meta } from './file-meta';
import { toServePlan, type ServeFileOptions, type ServePlan } from './options';
import { checkResponse, headersSent } from './response';
import type { Meter } from '../core/settle';
import { activeChannel, traceAsync } from '../core/trace';

/** @internal */
export { parseRange } from './conditional';
export type { ServeFileOptions } from './options';

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
 *   Cache-Control `public, max-age=<maxAge in seconds>`.
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
  checkRequest(req);
  checkResponse(res);
  if (typeof path !== 'string') throw invalidArgType('path', 'of type string', path);
  const plan = toServePlan(options);
  if (res.headersSent) throw headersSent();

  const ch = activeChannel('serveFile');
  if (ch === undefined) return serveChecked(req, res, path, plan, undefined);
  return traceAsync(ch, { path, method: req.method }, (meter) => serveChecked(req, res, path, plan, meter));
}

/** serveFile once its arguments are checked. */
async function serveChecked(req: http.IncomingMessage, res: http.ServerResponse, path: string, plan: ServePlan,
  meter: Meter | undefined): Promise<ServeFileResult> {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') return fail(res, 405, { allow: 'GET, HEAD' });
  const target = resolveTarget(path, plan.root);
  if (typeof target === 'number') return fail(res, target);
  const r = await serveTarget(req, res, target, plan, plan.cache, undefined, meter);
  return 'miss' in r ? fail(res, r.status) : r;
}

/** A file serveTarget did not answer for: why (the status serveFile answers), and whether a directory was found there. */
export interface Miss {
  miss: true;
  status: number;
  directory: boolean;
}

/**
 * Answers with the file at `target` (resolveTarget's path for plan.root),
 * or a precompressed variant of it, unless there is no such regular file
 * to serve: then nothing is written and the Miss says why (404 absent, a
 * directory, a device or a dotfile under 'ignore'; 403 unreadable or a
 * dotfile under 'deny'; 500 other failures to open). `beforeAnswer` is
 * called before anything is written (a framework takes the response then);
 * `meter` (a traced request) receives the body's figures.
 * @throws (as a rejection) as serveFile, once a response has begun.
 */
export async function serveTarget(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  target: string,
  plan: ServePlan,
  cache: OpenFileCache | undefined,
  beforeAnswer?: () => void,
  meter?: Meter,
): Promise<ServeFileResult | Miss> {
  // The directory the path was joined to, taken now (synchronously after
  // resolveTarget) and used for every check of this request.
  const base = plan.root === undefined ? undefined : baseOf(plan.root);
  // Judged on every request, before the cache: an entry kept for an
  // 'allow' call never answers an 'ignore' one.
  if (plan.dotfiles !== 'allow' && hasDotSegment(requestPart(target, base))) {
    return { miss: true, status: plan.dotfiles === 'deny' ? 403 : 404, directory: false };
  }
  const served: Served = {
    req, res, target, typeTarget: target, encoding: undefined, root: plan.root,
    useEtag: plan.useEtag, useLastModified: plan.useLastModified, cacheControl: plan.cacheControl,
    acceptRanges: plan.acceptRanges, vary: plan.precompressed.length > 0, setHeaders: plan.setHeaders, beforeAnswer, meter,
  };
  if (served.vary) {
    for (const encoding of acceptedEncodings(req.headers['accept-encoding'], plan.precompressed)) {
      const variant = target + SUFFIX[encoding];
      if (knownAbsent(variant)) continue;
      const r = await serveOne({ ...served, target: variant, encoding }, base, cache);
      if (!('miss' in r)) return r;
      if (r.status === 404) rememberAbsent(variant);
    }
  }
  return serveOne(served, base, cache);
}

/** serveTarget for one file: the original or one variant (`s.target`). */
async function serveOne(s: Served, base: string | undefined, cache: OpenFileCache | undefined): Promise<ServeFileResult | Miss> {
  const { target } = s;
  if (cache) {
    const hit = cache.lookup(target, base);
    if (hit) {
      try {
        const r = await serveOpen(s, hit.entry.input.fd, hit.meta, hit.entry);
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
    return missFor(err);
  }
  let entry: Entry | undefined;
  try {
    // The real root the file was found inside: the cache records it with the
    // entry, as the only root this check stands for.
    let confinedTo: string | undefined;
    if (base !== undefined) {
      confinedTo = await confined(input.fd, target, base);
      if (confinedTo === undefined) return { miss: true, status: 404, directory: false };
    }
    let meta: Meta;
    try {
      meta = toMeta(await fstat(input.fd));
    } catch (err) {
      return missFor(err);
    }
    if (!meta.isFile) return { miss: true, status: 404, directory: false };
    entry = cache?.insert(target, input, meta, confinedTo); // the cache owns the descriptor from here
    const r = await serveOpen(s, input.fd, meta, cache ? entry ?? { cached: false } : false);
    if (r !== RETRY) return r;
    // The file changed between fstat and the read: describe it again, and
    // answer without the fast path (which is the only one that retries).
    if (entry) cache!.drop(target);
    try {
      meta = toMeta(await fstat(input.fd));
    } catch (err) {
      return missFor(err);
    }
    return (await serveOpen(s, input.fd, meta, false)) as ServeFileResult;
  } finally {
    if (entry) cache!.release(entry);
    else await input.close();
  }
}

/** req must look like an http.IncomingMessage (its headers are read). */
export function checkRequest(req: unknown): asserts req is http.IncomingMessage {
  const r = req as http.IncomingMessage | null;
  if (typeof r !== 'object' || r === null || typeof r.headers !== 'object' || r.headers === null) {
    throw invalidArgType('req', 'an instance of http.IncomingMessage', req);
  }
}

/** The Miss for a file that could not be opened or described: 404, 403 (permission) or 500. */
function missFor(err: unknown): Miss {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'ENAMETOOLONG':
    case 'ELOOP':
    case 'ENXIO': // a socket
    case 'EISDIR': // a directory
    case 'ESPIPE': // a FIFO
    case 'EINVAL': // a character device
      return { miss: true, status: 404, directory: code === 'EISDIR' };
    case 'EACCES':
    case 'EPERM':
      return { miss: true, status: 403, directory: false };
    default:
      return { miss: true, status: 500, directory: false };
  }
}

/**
 * Variants found absent in the last second (path → when), so a request for
 * a file without one costs no open per request. Bounded: cleared at 4096.
 */
const absent = new Map<string, number>();
const ABSENT_MS = 1000;

function knownAbsent(path: string): boolean {
  const at = absent.get(path);
  if (at === undefined) return false;
  if (Date.now() - at < ABSENT_MS) return true;
  absent.delete(path);
  return false;
}

function rememberAbsent(path: string): void {
  if (absent.size >= 4096) absent.clear();
  absent.set(path, Date.now());
}

export type { Encoding };
