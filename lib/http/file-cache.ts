/**
 * serveFile's open-file cache (Linux): descriptors and metadata of recently
 * served files kept open, like nginx's `open_file_cache`, each hit
 * revalidated on the JS thread (see ServeFileOptions.cache in serve.ts).
 */
import { binding } from '../core/native';
import { toIntInRange } from '../core/validate';
import { invalidArgType } from '../core/errors';
import type { Input } from '../send/socket';
import { knownRealRoot } from './confine';
import type { Meta } from './file-meta';

/** Limits of `ServeFileOptions.cache` (serve.ts). */
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
  /**
   * How long a hit may be answered from what the last revalidation found,
   * in milliseconds, 0..3,600,000: nginx's `open_file_cache_valid`. Default
   * 0: every hit is revalidated with `stat(path)`, and a file is never
   * served stale. With N > 0, a hit less than N ms after its file's last
   * revalidation skips the `stat`: the bytes are still read from the open
   * file at send time (written in place: served at once; truncated: a small
   * resident body is described again at once, a larger one ends with the
   * connection destroyed, as any file shrinking during a send does), but a
   * file replaced at its path (renamed over) or deleted is served as it was,
   * and its size, ETag and Last-Modified are those of the last revalidation,
   * for up to N ms. With a root, the check that the file is still inside
   * it revalidates at least once a second regardless.
   */
  revalidateMs?: number;
}

/**
 * Closes the descriptors `serveFile`'s open-file cache keeps on this
 * thread (see `ServeFileOptions.cache`): for a clean shutdown after
 * `server.close()`, or before counting open descriptors. A file still being
 * sent is closed when its send ends. The cache fills again with the next
 * request; nothing else changes.
 */
export function closeServeFileCache(): void {
  for (const cache of caches.values()) cache.clear();
}

/**
 * The cache for serveFile's `cache` option (`true` or undefined: the default
 * limits): one per distinct limits on this thread, at most MAX_CACHES (the
 * least recently used is closed for another). Undefined when off: `false`,
 * or not Linux (the hit check reads /proc/self/fd).
 * @throws TypeError / RangeError for a bad option, on every platform.
 */
export function cacheFor(option: unknown): OpenFileCache | undefined {
  if (option === false) return undefined;
  if ((option === undefined || option === true) && defaultCache && caches.size === 1 && caches.get(DEFAULT_KEY) === defaultCache) {
    return defaultCache;
  }
  let maxEntries = DEFAULT_MAX_ENTRIES;
  let maxBytes = DEFAULT_MAX_BYTES;
  let revalidateMs = 0;
  if (option !== undefined && option !== true) {
    if (typeof option !== 'object' || option === null) {
      throw invalidArgType('options.cache', 'of type boolean or object', option);
    }
    const o = option as ServeFileCacheOptions;
    if (o.maxEntries !== undefined) maxEntries = toIntInRange(o.maxEntries, 'options.cache.maxEntries', 1, 65536);
    if (o.maxBytes !== undefined) maxBytes = toIntInRange(o.maxBytes, 'options.cache.maxBytes', 0, Number.MAX_SAFE_INTEGER);
    if (o.revalidateMs !== undefined) revalidateMs = toIntInRange(o.revalidateMs, 'options.cache.revalidateMs', 0, MAX_REVALIDATE_MS);
  }
  if (process.platform !== 'linux') return undefined; // the hit check reads /proc/self/fd
  const key = `${maxEntries}/${maxBytes}/${revalidateMs}`;
  let cache = caches.get(key);
  if (cache) {
    if (caches.size > 1) {
      caches.delete(key);
      caches.set(key, cache);
    }
    return cache;
  }
  cache = new OpenFileCache(maxEntries, maxBytes, revalidateMs);
  caches.set(key, cache);
  if (key === DEFAULT_KEY) defaultCache = cache;
  for (const [k, c] of caches) {
    if (caches.size <= MAX_CACHES) break;
    caches.delete(k);
    c.clear();
  }
  return cache;
}

/** One cached file: its descriptor (owned by the cache) and what stat said. */
export interface Entry {
  key: string;
  input: Input;
  meta: Meta;
  /** Requests using the descriptor now: it is closed only at 0. */
  refs: number;
  /** Out of the cache: close once refs reaches 0. */
  dropped: boolean;
  lastUsed: number;
  /** The last read on the JS thread found the range in the page cache (see `FastPath` in fast-body.ts). */
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
  /** When stat(path) last found the path naming this file (Date.now()). */
  validatedAt: number;
}

/** An LRU of open files, bounded in entries and in the sum of their sizes. */
export class OpenFileCache {
  private readonly entries = new Map<string, Entry>(); // in LRU order, oldest first
  private bytes = 0;
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    readonly maxEntries: number,
    readonly maxBytes: number,
    readonly revalidateMs: number = 0,
  ) {}

  /**
   * A cached file that `target` still names, revalidated now (synchronously):
   * same device and inode by stat(target), fresh metadata, and (with a root:
   * `base`, the directory the request path was joined to) the descriptor's
   * real path inside that root's real path, checked again unless the last
   * check was for this very root and less than CONFINE_RECHECK_MS ago.
   * Anything else drops the entry. With revalidateMs, an entry revalidated
   * less than that long ago is taken as it is, without the stat.
   */
  lookup(target: string, base: string | undefined): { entry: Entry; meta: Meta } | undefined {
    const entry = this.entries.get(target);
    if (!entry) return undefined;
    const now = Date.now();
    let realRoot: string | null = null;
    if (base !== undefined) {
      const known = knownRealRoot(base);
      if (known === undefined) {
        this.drop(target);
        return undefined;
      }
      if (entry.confinedTo !== known || now - entry.confinedAt >= CONFINE_RECHECK_MS) realRoot = known;
    }
    if (realRoot === null && now - entry.validatedAt < this.revalidateMs) return this.hit(target, entry, entry.meta, now);
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
    entry.validatedAt = now;
    return this.hit(target, entry, meta, now);
  }

  /** A lookup's hit: the entry in use by the caller (release() it), most recently used. */
  private hit(target: string, entry: Entry, meta: Meta, now: number): { entry: Entry; meta: Meta } {
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
    const entry: Entry = { key: target, input, meta, refs: 1, dropped: false, lastUsed: now, cached: false, confinedTo, confinedAt: now, validatedAt: now };
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
/** revalidateMs's upper bound: an hour. */
const MAX_REVALIDATE_MS = 3_600_000;
const IDLE_MS = 60_000;

const caches = new Map<string, OpenFileCache>(); // by limits, least recently used first
const DEFAULT_KEY = `${DEFAULT_MAX_ENTRIES}/${DEFAULT_MAX_BYTES}/0`;
let defaultCache: OpenFileCache | undefined;
