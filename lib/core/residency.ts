/**
 * Residency, eviction and advice: how much of a range is in the page cache,
 * and telling the kernel what to keep.
 */
import { binding, nextId, type NativeResidency } from './native';
import { settle, unwrap } from './settle';
import { activeChannel, traceAsync, traceSync } from './trace';
import { invalidArgValue, systemError } from './errors';
import { checkAdvisable } from './descriptor';
import { toFd, toPosition, type FileLike } from './validate';

/** The page-cache state of a byte range. */
export interface Residency {
  /** Pages the range touches. */
  pages: number;
  /** Of those, pages in the page cache; null when the kernel will not say. */
  residentPages: number | null;
  /** The range's length in bytes, clamped to the file's size. */
  bytes: number;
  /** Bytes of the range in the page cache, to page granularity; null when unknown. */
  residentBytes: number | null;
  /** Dirty pages (cachestat only). */
  dirtyPages?: number;
  /** Pages under writeback (cachestat only). */
  writebackPages?: number;
  /** Pages evicted from the cache (cachestat only). */
  evictedPages?: number;
  /** Evicted pages that would still be in a large enough cache (cachestat only). */
  recentlyEvictedPages?: number;
  /**
   * Where the answer came from. 'unknown' when the kernel does not tell this
   * caller (since Linux 5.2 only the file's owner, a writer or an
   * administrator is told): counts are then null, never a false claim.
   */
  source: 'cachestat' | 'mincore' | 'unknown';
}

const PAGE = binding.capabilities().pageSize;

function shape(r: NativeResidency): Residency {
  const out: Residency = {
    pages: r.pages,
    residentPages: r.resident,
    bytes: r.bytes,
    residentBytes: r.resident === null ? null : r.resident >= r.pages ? r.bytes : Math.min(r.bytes, r.resident * PAGE),
    source: r.source,
  };
  if (r.source === 'cachestat') {
    out.dirtyPages = r.dirty ?? 0;
    out.writebackPages = r.writeback ?? 0;
    out.evictedPages = r.evicted ?? 0;
    out.recentlyEvictedPages = r.recentlyEvicted ?? 0;
  }
  return out;
}

/**
 * Reports how much of `[offset, offset + length)` is in the page cache, using
 * cachestat(2) (Linux >= 6.5) or mincore(2). Runs on pagewarm's threads.
 *
 * @param offset Default 0.
 * @param length Default: to the end of the file.
 * @throws (as a rejection) TypeError / RangeError for bad arguments, or a system error.
 */
export async function residency(fd: FileLike, offset?: number, length?: number): Promise<Residency> {
  const handle = toFd(fd);
  const start = toPosition(offset, 'offset', 0);
  const count = toPosition(length, 'length', -1);
  const ch = activeChannel('residency');
  if (ch === undefined) {
    const id = nextId();
    return shape(await settle(binding.residency(handle, start, count, id), id));
  }
  return traceAsync(ch, { fd: handle, offset: start, length: count < 0 ? undefined : count }, async (meter) => {
    const id = nextId();
    return shape(await settle(binding.residency(handle, start, count, id, true), id, undefined, meter));
  });
}

/**
 * {@link residency} on the calling thread. cachestat costs about 30 ns a
 * page (7.6 ms for a 1 GiB range): fine for small ranges on the main thread.
 */
export function residencySync(fd: FileLike, offset?: number, length?: number): Residency {
  const handle = toFd(fd);
  const start = toPosition(offset, 'offset', 0);
  const count = toPosition(length, 'length', -1);
  const ch = activeChannel('residency');
  if (ch === undefined) return shape(unwrap(binding.residencySync(handle, start, count)));
  return traceSync(ch, { fd: handle, offset: start, length: count < 0 ? undefined : count },
    () => shape(unwrap(binding.residencySync(handle, start, count))));
}

/** Advice for {@link advise}, as posix_fadvise(2) takes it. */
export type Advice = 'normal' | 'sequential' | 'random' | 'willneed' | 'dontneed' | 'noreuse';
const ADVICE: readonly Advice[] = ['normal', 'sequential', 'random', 'willneed', 'dontneed', 'noreuse'];

/**
 * posix_fadvise(2) on the calling thread. 'willneed' starts readahead but
 * guarantees nothing (use {@link prepareForRead} for that); 'dontneed' drops
 * clean pages of the range from the cache.
 *
 * @param length Bytes; 0 means to the end of the file, as for posix_fadvise.
 * @throws TypeError `ERR_INVALID_ARG_VALUE` for unknown advice, or a system error
 *   (`EBADF`, `ESPIPE` for a pipe).
 */
export function advise(fd: FileLike, offset: number, length: number, advice: Advice): void {
  const handle = toFd(fd);
  const start = toPosition(offset, 'offset', 0);
  const count = toPosition(length, 'length', 0);
  const index = ADVICE.indexOf(advice);
  if (index < 0) throw invalidArgValue('advice', advice, `must be one of: ${ADVICE.join(', ')}`);
  unwrap(binding.advise(handle, start, count, index));
}

/**
 * Drops the clean pages of a range from the page cache
 * (posix_fadvise DONTNEED). Dirty pages stay until written back. Only
 * page-cache folios (up to 2 MiB) lying wholly inside the range are dropped:
 * evict whole files or 2 MiB-aligned ranges to be sure a range leaves.
 *
 * @param offset Default 0.
 * @param length Bytes. Default: to the end of the file. 0 means zero bytes
 *   (nothing is dropped; the descriptor is still checked), as everywhere in
 *   pagewarm except {@link advise}, which passes posix_fadvise's own meaning on.
 * @throws TypeError / RangeError for bad arguments, or a system error
 *   (`EBADF`, `ESPIPE` for a pipe), as {@link advise}.
 */
export function evict(fd: FileLike, offset?: number, length?: number): void {
  const handle = toFd(fd);
  const start = toPosition(offset, 'offset', 0);
  const count = toPosition(length, 'length', -1);
  if (count === 0) {
    // posix_fadvise would read 0 as "to the end of the file": check the
    // descriptor as it would, and drop nothing.
    const bad = checkAdvisable(handle);
    if (bad) throw systemError(bad);
    return;
  }
  unwrap(binding.advise(handle, start, count < 0 ? 0 : count, ADVICE.indexOf('dontneed')));
}
