/**
 * The resident fast path of serveFile's open-file cache: a small body that
 * the page cache holds is read on the JS thread with `preadv2(RWF_NOWAIT)`
 * (a copy that fails rather than wait for the disk), to be written with the
 * headers in one `res.end()`.
 */
import * as http from 'node:http';
import { constants as osConstants } from 'node:os';
import { binding } from '../core/native';
import { isNativeFailure } from '../core/errors';
import { directBody } from './response';
import { PIECE_BYTES, givePiece, takePiece } from '../core/piece-pool';

/** Bodies up to this size may be read on the JS thread when resident (with the cache). */
export const FAST_MAX = PIECE_BYTES;

/**
 * How a small body may be sent: `false`, never read on the JS thread; else
 * it may be, and `cached` says whether the last read of this file there
 * found its range in the page cache (then it is read straight away, else
 * cachestat is asked first: a read of an uncached range, though it never
 * waits, would start the disk's readahead from the event loop).
 */
export type FastPath = false | { cached: boolean };

/** A body read from the page cache, and what to call once `res.end()` has called back for it. */
export interface ResidentBody {
  body: Buffer;
  /** The body's bytes are in the kernel: its buffer may serve another response. */
  written: () => void;
}

/**
 * Reads `[start, start + count)` (at most FAST_MAX bytes) of `fd` on the JS
 * thread if the page cache holds all of it, never waiting for the disk, and
 * records in `fast.cached` whether it did (cachestat is asked first unless
 * the last read found the file cached).
 * @returns The body; `'not cached'` when the range is not (all) in the page
 *   cache or that cannot be told: send it another way; `'changed'` when the
 *   file is shorter than the range (truncated since it was described) or
 *   failed to read: describe it again.
 */
export function residentBody(
  res: http.ServerResponse,
  fd: number,
  start: number,
  count: number,
  fast: { cached: boolean },
): ResidentBody | 'not cached' | 'changed' {
  // A pooled piece is reused once res.end() calls back; only a direct
  // response guarantees its bytes are in the kernel by then. Middleware that
  // replaced write/end may keep the chunk and call back at once.
  const slab = count > SLAB_MIN && directBody(res) ? takePiece(count) : undefined;
  const body = slab ?? Buffer.allocUnsafe(count);
  const got = fast.cached || !fastPathAvailable || resident(fd, start, count) ? readResident(fd, body, start) : NOT_CACHED;
  fast.cached = got === count;
  if (got === count) {
    return {
      body,
      written: () => {
        // The body is in the kernel now: the piece can serve another response.
        if (slab) givePiece(slab);
      },
    };
  }
  if (slab) givePiece(slab);
  // A short read of a range the cache holds (or none at all) is a file
  // truncated since the stat: start over.
  return got === NOT_CACHED ? 'not cached' : 'changed';
}

/**
 * Bodies above this size are read into a pooled piece (core/piece-pool.ts),
 * returned once res.end()'s callback says the bytes are in the kernel;
 * smaller ones come from Node's own pool.
 */
const SLAB_MIN = 8 << 10;

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
