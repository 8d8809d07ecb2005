/**
 * The binding's `files` in the portable fallback: each path opened, described
 * and closed on the libuv pool, one after another within a batch; warming
 * reads the range through the pool's slots (a copy the fallback cannot
 * avoid); eviction cannot be asked for (Node has no posix_fadvise) and
 * residency is never known, so both report `unknown`.
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
const SYSCALL = ['sendfile', 'open', 'posix_fadvise'] as const;
const { O_RDONLY, O_NONBLOCK = 0, O_NOCTTY = 0, O_NOFOLLOW = 0 } = fs.constants;

export function filesCalls(pool: FallbackPool, owned: OwnedDescriptors, page: number): Pick<Binding, 'files'> {
  return {
    files(op, paths, offset, length, maxSize, flags, id) {
      if (offset < 0) return { errno: E.EINVAL, syscall: SYSCALL[op] };
      pool.track(id);
      return (async (): Promise<FileOutcomes> => {
        const data = new Float64Array(paths.length * FILE_OUTCOME_FIELDS);
        const syscalls: Array<string | undefined> = new Array(paths.length);
        try {
          for (let i = 0; i < paths.length; i++) {
            if (pool.isCancelled(id)) throw aborted(SYSCALL[op]);
            const f = data.subarray(i * FILE_OUTCOME_FIELDS, (i + 1) * FILE_OUTCOME_FIELDS);
            const failed = await oneFile(pool, owned, op, paths[i], offset, length, maxSize, flags, id, page, f);
            if (failed) {
              f[0] = failed.errno;
              syscalls[i] = failed.syscall;
            }
          }
        } finally {
          if (pool.settle(id)) throw aborted(SYSCALL[op]); // eslint-disable-line no-unsafe-finally
        }
        return { data, syscalls };
      })();
    },
  };
}

/** One path's outcome into `f` (see FileOutcomes); a failure is returned, not thrown. */
async function oneFile(
  pool: FallbackPool, owned: OwnedDescriptors, op: 0 | 1 | 2, path: string, offset: number, length: number,
  maxSize: number, flags: number, id: number, page: number, f: Float64Array,
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
    const bytes = rangeLength(size, offset, length);
    f[2] = bytes;
    f[6] = bytes === 0 ? 0 : Math.ceil((offset + bytes) / page) - Math.floor(offset / page);
    if (op !== 0) return undefined;
    const buf = pool.warmBuffer();
    for (let done = 0; done < bytes; ) {
      if (pool.isCancelled(id)) throw aborted('sendfile');
      let n: number;
      try {
        n = await pool.readChunk(fd, buf, Math.min(pool.readSize(), bytes - done), offset + done);
      } catch (err) {
        return failure(err, 'read');
      }
      if (n === 0) break;
      done += n;
      pool.counters.fallbackReads++;
      pool.counters.warmedBytes += n;
    }
    return undefined;
  } finally {
    owned.disown(fd);
  }
}
