/**
 * Residency in the fallback: reported as `source: 'unknown'` with null
 * counts, since Node has no way to ask the kernel and the fallback never
 * guesses. The range's bytes and pages are still counted, and the
 * descriptor is checked as native checks it.
 */
import * as fs from 'node:fs';
import { endianness, release } from 'node:os';
import type { Binding, NativeResidency } from '../core/binding';
import { inspectFd, isFailure, rangeLength, type FdInfo } from './inspect';
import { aborted, type FallbackPool } from './pool';

const isLinux = process.platform === 'linux';

/**
 * The binding's residency and residencySync for pages of `page` bytes.
 * residency settles on a later microtask, or rejects with ECANCELED when
 * cancelled before that; both name the syscall native would (see
 * {@link residencySyscallName}) in their failures.
 */
export function residencyCalls(pool: FallbackPool, page: number): Pick<Binding, 'residency' | 'residencySync'> {
  const residencySyscall = residencySyscallName();
  return {
    residency(fd, offset, length, id) {
      const info = inspectFd(fd, residencySyscall);
      if (isFailure(info)) return info;
      pool.track(id);
      return Promise.resolve().then(() => {
        const wasCancelled = pool.settle(id);
        if (wasCancelled) throw aborted(residencySyscall);
        return unknownResidency(info, offset, length, page);
      });
    },

    residencySync(fd, offset, length) {
      const info = inspectFd(fd, residencySyscall);
      if (isFailure(info)) return info;
      return unknownResidency(info, offset, length, page);
    },
  };
}

/** The system page size in bytes: from the auxiliary vector on Linux, else the platform's usual one. */
export function pageSize(): number {
  if (isLinux) {
    try {
      const auxv = fs.readFileSync('/proc/self/auxv');
      const wide = process.arch.endsWith('64');
      const step = wide ? 8 : 4;
      const le = endianness() === 'LE';
      const word = (at: number): number =>
        wide
          ? Number(le ? auxv.readBigUInt64LE(at) : auxv.readBigUInt64BE(at))
          : le
            ? auxv.readUInt32LE(at)
            : auxv.readUInt32BE(at);
      for (let at = 0; at + 2 * step <= auxv.length; at += 2 * step) {
        const key = word(at);
        if (key === 0) break; // AT_NULL
        if (key === 6) return word(at + step); // AT_PAGESZ
      }
    } catch {
      // fall through to the usual size
    }
  }
  return process.platform === 'darwin' && process.arch === 'arm64' ? 16384 : 4096;
}

/**
 * The syscall native residency calls name in their errors: cachestat(2) on
 * Linux >= 6.5, else mincore(2). The fallback calls neither, but names the
 * same one so that errors read the same in both modes.
 */
function residencySyscallName(): string {
  const [major, minor] = release().split('.').map((n) => parseInt(n, 10));
  return isLinux && (major > 6 || (major === 6 && minor >= 5)) ? 'cachestat' : 'mincore';
}

/** The answer for a checked range: its bytes and pages, residency unknown. */
function unknownResidency(info: FdInfo, offset: number, length: number, page: number): NativeResidency {
  const size = Number.isFinite(info.size) ? info.size : offset + Math.max(0, length);
  const bytes = rangeLength(size, offset, length);
  const pages = bytes === 0 ? 0 : Math.ceil((offset + bytes) / page) - Math.floor(offset / page);
  return { bytes, pages, resident: null, dirty: null, writeback: null, evicted: null, recentlyEvicted: null, source: 'unknown' };
}
