/**
 * Loads the native binding once, for the whole package, and describes the
 * calls it offers. Where it cannot load (another OS, a failed build) or when
 * PAGEWARM_FORCE_FALLBACK=1, the portable fallback stands in with the same
 * calls. Nothing here is public API.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import type { NativeFailure } from './errors';
import type { Stats } from './config';
import { fallbackBinding } from './fallback';

/** What the native layer reports for a range's residency. */
export interface NativeResidency {
  bytes: number;
  pages: number;
  resident: number | null;
  dirty: number | null;
  writeback: number | null;
  evicted: number | null;
  recentlyEvicted: number | null;
  source: 'cachestat' | 'mincore' | 'unknown';
}

/** The binding's counters: the public {@link Stats}, field for field. */
export type NativeStats = Stats;

/**
 * The binding. Lengths of -1 mean "to the end of the file". Async calls
 * return a number when settled on the JS thread, a Promise otherwise, or a
 * NativeFailure for errors found before any work began; the promises reject
 * with NativeFailure objects.
 */
export interface Binding {
  warm(fd: number, offset: number, length: number, id: number): number | Promise<number> | NativeFailure;
  warmSync(fd: number, offset: number, length: number): number | NativeFailure;
  residency(fd: number, offset: number, length: number, id: number): Promise<NativeResidency> | NativeFailure;
  residencySync(fd: number, offset: number, length: number): NativeResidency | NativeFailure;
  advise(fd: number, offset: number, length: number, advice: number): undefined | NativeFailure;
  /**
   * Reads `[position, position + length)` into `buffer` at `offset`, only
   * what the page cache already holds (preadv2 with RWF_NOWAIT): EAGAIN when
   * the first page is not cached, a short count when a later one is not. The
   * fallback cannot tell and always answers EAGAIN.
   */
  readCached(fd: number, buffer: Buffer, offset: number, length: number, position: number): number | NativeFailure;
  /**
   * For a cached descriptor: stat(path) into `out` as [dev, ino, size,
   * mtimeMs, isFile 1/0] and, with a realRoot, whether fd's file lies inside
   * it. Returns 0 (ok), 1 (outside realRoot) or a negative errno.
   */
  revalidate(path: string, fd: number, realRoot: string | null, out: Float64Array): number;
  send(outFd: number, inFd: number, offset: number, length: number, id: number): number | Promise<number> | NativeFailure;
  sendSync(outFd: number, inFd: number, offset: number, length: number): number | NativeFailure;
  /**
   * Opens `path` read-only (O_NONBLOCK, O_NOCTTY, O_CLOEXEC) off the JS
   * thread. The descriptor belongs to this environment (the main thread or a
   * worker): it stays open until unpin(fd) or until the environment is torn
   * down, so a worker terminated while the open or the work on it is in
   * flight leaks nothing. Rejects with `{ errno, syscall: 'open' }`.
   */
  openFile(path: string, id: number): Promise<number> | NativeFailure;
  /** Closes a descriptor openFile() (or pin()) returned; any other number is ignored. */
  unpin(fd: number): void;
  cancel(id: number): void;
  configure(threads: number, chunkSize: number): undefined | NativeFailure;
  stats(): NativeStats;
  /** stats().chunkSize alone, cheaply. */
  chunkSize(): number;
  capabilities(): { cachestat: boolean; pageSize: number };
  setTestFlags?(flags: { forceReadFallback?: boolean; noNowaitReads?: boolean }): void;
}

/** Finds the package root from wherever this file was compiled to. */
export function packageRoot(from = __dirname): string {
  let dir = from;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'pagewarm') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('pagewarm: cannot find the package root');
    dir = parent;
  }
}

interface Loaded {
  binding: Binding;
  native: boolean;
  /** Why the fallback is in use, when it is. */
  reason?: string;
}

function load(): Loaded {
  if (process.env.PAGEWARM_FORCE_FALLBACK === '1') {
    return { binding: fallbackBinding(), native: false, reason: 'PAGEWARM_FORCE_FALLBACK=1' };
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => Binding & { unsupported?: boolean };
    const binding = nodeGypBuild(packageRoot());
    if (binding.unsupported) return { binding: fallbackBinding(), native: false, reason: `no native support on ${process.platform}` };
    return { binding, native: true };
  } catch (err) {
    const reason = `native addon did not load: ${(err as Error).message}`;
    warnFallback(reason);
    return { binding: fallbackBinding(), native: false, reason };
  }
}

/**
 * On Linux the addon is expected to load (a prebuild or a source build): when
 * it does not, say so once (on the main thread), since every warm-up then
 * copies on the libuv pool and every send copies through JavaScript.
 * Elsewhere the fallback is the normal path and nothing is said.
 */
function warnFallback(reason: string): void {
  if (process.platform !== 'linux' || !isMainThread) return;
  process.emitWarning(
    `pagewarm: ${reason}. Using the portable fallback: warm-ups read on the libuv pool, sends copy, residency is unknown. ` +
      'Set PAGEWARM_FORCE_FALLBACK=1 to choose the fallback without this warning.',
    { code: 'PAGEWARM_FALLBACK' },
  );
}

const loaded = load();

/** The binding in use: native, or the portable fallback. */
export const binding: Binding = loaded.binding;
/** True when the native addon is in use. */
export const isNative: boolean = loaded.native;
/** Why the fallback is in use (undefined when native). */
export const fallbackReason: string | undefined = loaded.reason;

let lastId = 0;
/** A job id unique within this thread, for cancel(). */
export function nextId(): number {
  lastId = lastId >= 0xffffffff ? 1 : lastId + 1;
  return lastId;
}
