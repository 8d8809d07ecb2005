/**
 * The options serveFile and serveStatic share, and the plan they are
 * validated into once (per call for serveFile, at creation for
 * serveStatic).
 */
import type * as http from 'node:http';
import { invalidArgType } from '../core/errors';
import { toBoolean, toOptions } from '../core/validate';
import { toDotfiles } from './confine';
import { cacheFor, type OpenFileCache, type ServeFileCacheOptions } from './file-cache';
import { toPrecompressed, type Encoding } from './encoding';
import { toMaxAgeSeconds } from './max-age';

/**
 * What `setHeaders` is told about the file being sent: the fields of
 * `fs.Stats` a header decision needs (a subset, also on cache hits, where
 * the file was revalidated with one `stat` and no `fs.Stats` exists).
 */
export interface FileStat {
  size: number;
  mtime: Date;
  mtimeMs: number;
  dev: number;
  ino: number;
  isFile(): boolean;
  isDirectory(): boolean;
}

/** Options for {@link serveFile} (and, with more, serveStatic). */
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
  /**
   * Cache-Control max-age, in **milliseconds** or as a duration string
   * (`'30s'`, `'1h'`, `'7d'`, `'1y'`), as serve-static reads it: sent in
   * whole seconds, at most one year (Infinity too). Default 0.
   * (Before 0.2 this was seconds.)
   * @throws RangeError `ERR_OUT_OF_RANGE` (negative), TypeError otherwise.
   */
  maxAge?: number | string;
  /** Send `Cache-Control` at all. Default true; false sends none and ignores maxAge and immutable. */
  cacheControl?: boolean;
  /** Add the `immutable` directive to Cache-Control. Default false. */
  immutable?: boolean;
  /** Send `Accept-Ranges: bytes` and honour Range. Default true; false answers every GET with the whole file. */
  acceptRanges?: boolean;
  /**
   * Serve `name.br` / `name.gz` (or `.zst`) beside a file instead of it when
   * the request's Accept-Encoding accepts that coding (q-values, `*` and
   * `identity;q=0` understood): zero-copy like any file, with
   * `Content-Encoding`, the original's Content-Type, an ETag of its own
   * (suffixed with the coding) and Range over the encoded bytes. Every file
   * response then carries `Vary: Accept-Encoding`. `true` means
   * `['br', 'gzip']`; a list gives the server's preference, used between
   * codings the client weighs equally. Default false. A variant's absence is
   * remembered for a second, so a file compressed later is noticed within
   * one.
   */
  precompressed?: boolean | Encoding[];
  /**
   * Called before the headers of a file response (200, 206, 304, 412, 416;
   * not for errors or redirects) are written, with the response, the path
   * of the file (the original's, also when a precompressed variant is sent)
   * and its stat. Headers it sets win over serveFile's own (Cache-Control,
   * ETag, Last-Modified, Accept-Ranges, Content-Type).
   */
  setHeaders?: (res: http.ServerResponse, path: string, stat: FileStat) => void;
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
   * `revalidateMs` (default 0) lets a hit skip the `stat` for that long after
   * its last one, as nginx's `open_file_cache_valid` does: see
   * {@link ServeFileCacheOptions.revalidateMs} for what may then lag.
   */
  cache?: boolean | ServeFileCacheOptions;
}

/** ServeFileOptions, validated. */
export interface ServePlan {
  root: string | undefined;
  dotfiles: 'ignore' | 'deny' | 'allow';
  useEtag: boolean;
  useLastModified: boolean;
  /** The Cache-Control value, or undefined for none. */
  cacheControl: string | undefined;
  acceptRanges: boolean;
  precompressed: Encoding[];
  setHeaders: ServeFileOptions['setHeaders'];
  /** The open-file cache, resolved when the plan was made (undefined: off). */
  cache: OpenFileCache | undefined;
  /** The cache option as given, for callers that keep a plan and resolve it again per request (cacheFor). */
  cacheOption: unknown;
}

/**
 * Validates options into a plan.
 * @throws TypeError / RangeError naming the option.
 */
export function toServePlan(options: unknown, name = 'options'): ServePlan {
  const opts = toOptions<ServeFileOptions>(options, name);
  if (opts.root !== undefined && typeof opts.root !== 'string') throw invalidArgType(`${name}.root`, 'of type string', opts.root);
  if (opts.setHeaders !== undefined && typeof opts.setHeaders !== 'function') {
    throw invalidArgType(`${name}.setHeaders`, 'of type function', opts.setHeaders);
  }
  const maxAge = toMaxAgeSeconds(opts.maxAge, `${name}.maxAge`);
  const immutable = toBoolean(opts.immutable, `${name}.immutable`, false);
  const cacheControl = toBoolean(opts.cacheControl, `${name}.cacheControl`, true)
    ? `public, max-age=${maxAge}${immutable ? ', immutable' : ''}`
    : undefined;
  const cache = cacheFor(opts.cache); // validated on every platform
  return {
    root: opts.root,
    dotfiles: toDotfiles(opts.dotfiles),
    useEtag: toBoolean(opts.etag, `${name}.etag`, true),
    useLastModified: toBoolean(opts.lastModified, `${name}.lastModified`, true),
    cacheControl,
    acceptRanges: toBoolean(opts.acceptRanges, `${name}.acceptRanges`, true),
    precompressed: toPrecompressed(opts.precompressed, `${name}.precompressed`),
    setHeaders: opts.setHeaders,
    cache,
    cacheOption: opts.cache,
  };
}
