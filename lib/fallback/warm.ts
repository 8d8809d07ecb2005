/**
 * Warming in the fallback: the range is read into the pool's scratch buffer,
 * chunk by chunk (the bytes are copied once and dropped). Errors of the
 * reads are reported under `read`, those of the descriptor checks under
 * `sendfile`, as native reports them.
 */
import * as fs from 'node:fs';
import type { Binding } from '../core/binding';
import { failure } from '../core/descriptor';
import { inspectFd, isFailure, rangeLength, reopen } from './inspect';
import { aborted, type FallbackPool } from './pool';

/**
 * The binding's warm and warmSync. warm checks the descriptor on the calling
 * thread and returns a failure found there (EMFILE too, when no private
 * reopen can be had, as the native dup(2) fails) or 0 for an empty range;
 * otherwise it resolves with the bytes read, one chunk per slot of `pool`.
 * warmSync reads on the calling thread.
 */
export function warmCalls(pool: FallbackPool): Pick<Binding, 'warm' | 'warmSync'> {
  return {
    warm(fd, offset, length, id) {
      const info = inspectFd(fd, 'sendfile');
      if (isFailure(info)) return info;
      const total = rangeLength(info.size, offset, length);
      if (total === 0) return 0;
      // Out of descriptors: EMFILE before any work, as the native dup(2) fails.
      const reopened = reopen(fd, 'sendfile');
      if (isFailure(reopened)) return reopened;
      return pool.start(id, fd, info, async (src) => {
        const buf = pool.warmBuffer();
        let done = 0;
        while (done < total) {
          if (pool.isCancelled(id)) throw aborted('sendfile');
          let n: number;
          try {
            n = await pool.readChunk(src, buf, Math.min(pool.readSize(), total - done), offset + done);
          } catch (e) {
            throw failure(e, 'read');
          }
          if (n === 0) break; // end of file (it may have shrunk)
          done += n;
          pool.counters.fallbackReads++;
          pool.counters.warmedBytes += n;
        }
        return done;
      }, reopened);
    },

    warmSync(fd, offset, length) {
      const info = inspectFd(fd, 'sendfile');
      if (isFailure(info)) return info;
      const total = rangeLength(info.size, offset, length);
      const { fd: src, reopened } = pool.syncFd(fd, info);
      const buf = pool.warmBuffer();
      let done = 0;
      try {
        while (done < total) {
          const n = fs.readSync(src, buf, 0, Math.min(pool.readSize(), total - done), offset + done);
          if (n === 0) break;
          done += n;
          pool.counters.fallbackReads++;
          pool.counters.warmedBytes += n;
        }
      } catch (e) {
        return failure(e, 'read');
      } finally {
        if (reopened !== undefined) fs.closeSync(reopened);
      }
      return done;
    },
  };
}
