/**
 * The binding's `files` and budgets in the portable fallback: each path
 * opened, described and closed on the libuv pool, one after another within a
 * batch; warming and restoring read the ranges through the pool's slots (a
 * copy the fallback cannot avoid; a restore reads every listed range, since
 * residency is never known); eviction cannot be asked for (Node has no
 * posix_fadvise), and residency and maps report `unknown`.
 */
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { FILE_OUTCOME_FIELDS, type Binding, type FileOutcomes } from '../core/binding';
import { failure } from '../core/descriptor';
import type { NativeFailure } from '../core/errors';
import { rangeLength } from './inspect';
import type { OwnedDescriptors } from './open';
import { aborted, type FallbackPool } from './pool';

const E = osConstants.errno;
const SYSCALL = ['sendfile', 'open', 'posix_fadvise', 'open', 'sendfile'] as const;
const { O_RDONLY, O_NONBLOCK = 0, O_NOCTTY = 0, O_NOFOLLOW = 0 } = fs.constants;

/** The fallback's budget: bytes read so far and the limit. */
interface Budget {
  used: number;
  limit: number;
}

/** Takes `bytes` from the budget, or nothing and false when they do not fit. */
function reserve(budget: Budget | undefined, bytes: number): boolean {
  if (!budget) return true;
  if (budget.used + bytes > budget.limit) return false;
  budget.used += bytes;
  return true;
}

export function filesCalls(pool: FallbackPool, owned: OwnedDescriptors, page: number): Pick<Binding, 'files' | 'budget' | 'budgetLimit'> {
  return {
    budget(limit) {
      return { used: 0, limit } satisfies Budget;
    },

    budgetLimit(handle, limit) {
      const budget = handle as Budget;
      if (limit !== undefined) budget.limit = limit;
      return budget.used;
    },

    files(op, paths, offset, length, maxSize, flags, id, handle, specs) {
      if (offset < 0) return { errno: E.EINVAL, syscall: SYSCALL[op] };
      pool.track(id);
      return (async (): Promise<FileOutcomes> => {
        const data = new Float64Array(paths.length * FILE_OUTCOME_FIELDS);
        const syscalls: Array<string | undefined> = new Array(paths.length);
        const budget = handle as Budget | undefined;
        let stopped = false;
        let at = 0; // in specs
        try {
          for (let i = 0; i < paths.length; i++) {
            if (pool.isCancelled(id)) throw aborted(SYSCALL[op]);
            const f = data.subarray(i * FILE_OUTCOME_FIELDS, (i + 1) * FILE_OUTCOME_FIELDS);
            let spec: Float64Array | undefined;
            if (op === 4) {
              const n = specs![at + 6]!;
              spec = specs!.subarray(at, at + 7 + 2 * n);
              at += 7 + 2 * n;
            }
            if (stopped) {
              f[13] = 1;
              continue;
            }
            const failed = await oneFile(pool, owned, op, paths[i]!, offset, length, maxSize, flags, id, page, f, budget, spec);
            if (f[13] === 1) stopped = true;
            if (failed) {
              f[0] = failed.errno;
              syscalls[i] = failed.syscall;
            }
          }
        } finally {
          if (pool.settle(id)) throw aborted(SYSCALL[op]); // eslint-disable-line no-unsafe-finally
        }
        return { data, syscalls, ranges: new Float64Array(0) };
      })();
    },
  };
}

/** One path's outcome into `f` (see FileOutcomes); a failure is returned, not thrown. */
async function oneFile(
  pool: FallbackPool, owned: OwnedDescriptors, op: 0 | 1 | 2 | 3 | 4, path: string, offset: number, length: number,
  maxSize: number, flags: number, id: number, page: number, f: Float64Array, budget: Budget | undefined, spec: Float64Array | undefined,
): Promise<NativeFailure | undefined> {
  f[7] = f[8] = -1;
  f[9] = 2; // unknown
  if (path.includes('\0')) return { errno: E.ENOENT, syscall: 'open' };
  let fd: number;
  try {
    fd = owned.own(await new Promise<number>((resolve, reject) =>
      fs.open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | (flags & 1 ? 0 : O_NOFOLLOW), (err, n) => (err ? reject(err) : resolve(n))),
    ));
  } catch (err) {
    return failure(err, 'open');
  }
  try {
    let st: fs.BigIntStats;
    try {
      st = await new Promise<fs.BigIntStats>((resolve, reject) =>
        fs.fstat(fd, { bigint: true }, (err, s) => (err ? reject(err) : resolve(s))),
      );
    } catch (err) {
      return failure(err, 'fstat');
    }
    f[3] = Number(st.dev);
    f[4] = Number(st.ino >> 32n);
    f[5] = Number(st.ino & 0xffffffffn);
    f[10] = Number(st.mtimeNs / 1_000_000_000n);
    f[11] = Number(st.mtimeNs % 1_000_000_000n);
    if (st.isDirectory()) return { errno: E.EISDIR, syscall: 'read' };
    if (st.isFIFO() || st.isSocket()) return { errno: E.ESPIPE, syscall: 'read' };
    // A block device's size is not in its stat: the fallback takes regular files only.
    if (!st.isFile()) return { errno: E.EINVAL, syscall: 'read' };
    const size = Number(st.size);
    f[1] = size;
    if (maxSize >= 0 && size > maxSize) {
      f[0] = -1;
      return undefined;
    }
    if (spec && (spec[0] !== f[3] || spec[1] !== f[4] || spec[2] !== f[5] || spec[3] !== size || spec[4] !== f[10] || spec[5] !== f[11])) {
      f[0] = -2; // not the file the snapshot saw
      return undefined;
    }
    // The byte ranges to read: the listed pages (restore), or the one range.
    const ranges: number[] = [];
    if (op === 3) {
      f[2] = size;
      f[6] = Math.ceil(size / page);
      return undefined;
    } else if (spec) {
      for (let k = 0; k < spec[6]!; k++) {
        const start = spec[7 + 2 * k]! * page;
        const n = rangeLength(size, start, spec[8 + 2 * k]! * page);
        if (n > 0) ranges.push(start, n);
      }
    } else {
      const bytes = rangeLength(size, offset, length);
      f[6] = bytes === 0 ? 0 : Math.ceil((offset + bytes) / page) - Math.floor(offset / page);
      if (op === 0 && bytes > 0) ranges.push(offset, bytes);
      f[2] = bytes;
    }
    const buf = pool.warmBuffer();
    for (let r = 0; r < ranges.length; r += 2) {
      const [start, bytes] = [ranges[r]!, ranges[r + 1]!];
      if (spec) f[2] += bytes;
      if (!reserve(budget, bytes)) {
        f[13] = 1;
        return undefined;
      }
      for (let done = 0; done < bytes; ) {
        if (pool.isCancelled(id)) throw aborted('sendfile');
        let n: number;
        try {
          n = await pool.readChunk(fd, buf, Math.min(pool.readSize(), bytes - done), start + done);
        } catch (err) {
          return failure(err, 'read');
        }
        if (n === 0) break;
        done += n;
        pool.counters.fallbackReads++;
        pool.counters.warmedBytes += n;
      }
      f[12] += bytes;
    }
    return undefined;
  } finally {
    owned.disown(fd);
  }
}
