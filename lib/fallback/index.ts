/**
 * The portable fallback: the same calls as the native binding, made with
 * ordinary reads and writes. It serves platforms other than Linux, machines
 * where the addon failed to build or load, and PAGEWARM_FORCE_FALLBACK=1.
 *
 * - Warming reads the range into a scratch buffer that every warm-up reuses
 *   (the bytes are copied once and dropped): ./warm.
 * - Residency is reported as `source: 'unknown'` with null counts: Node has no
 *   way to ask the kernel, and the fallback never guesses: ./residency.
 * - Advice (and so `evict`) is checked like posix_fadvise checks it, then
 *   does nothing: ../core/descriptor.
 * - Sending copies through a buffer of the job's own: ./send.
 *
 * Argument checks and errors match the native binding's: the descriptor is
 * checked on the calling thread (EBADF for a closed, write-only or O_PATH
 * descriptor, EISDIR, ESPIPE for pipes and sockets, EINVAL for character
 * devices) and the failure is returned, not thrown, exactly as native does
 * (./inspect).
 *
 * Like the native pool, at most `threads` reads run at once, one chunk each,
 * first come first served (./pool). The reads themselves run on the libuv
 * threadpool (there is no other way to read off the JS thread in Node),
 * which the native addon avoids.
 *
 * Async calls work on a private reopen of the descriptor (/proc/self/fd/N on
 * Linux, /dev/fd/N elsewhere) where the system allows it, so a JS close()
 * during the operation cannot redirect it to a reused descriptor number; the
 * reopen also drops O_DIRECT, as the native buffered reopen does. A warm-up
 * in a process out of descriptors fails with EMFILE before it starts, as the
 * native dup(2) does, rather than run on the caller's descriptor. The
 * destination of a send cannot be reopened (sockets): each write first checks
 * that its number still names the same socket or file, and a send whose
 * destination was closed under it fails with EBADF (native, working on its
 * own duplicate, would see EPIPE or ECONNRESET from a peer that went away).
 */
import type { Binding } from '../core/binding';
import { checkAdvisable } from '../core/descriptor';
import { cachedCalls } from './cached';
import { filesCalls } from './files';
import { openCalls, OwnedDescriptors } from './open';
import { FallbackPool } from './pool';
import { pageSize, residencyCalls } from './residency';
import { keepSigpipeCaught, sendCalls } from './send';
import { warmCalls } from './warm';

/**
 * The fallback binding. One per thread, like the native per-environment
 * state: its slots, jobs, counters and owned descriptors are its own. On
 * the main thread, creating one keeps SIGPIPE caught for the process
 * (see ./send).
 */
export function fallbackBinding(): Binding {
  keepSigpipeCaught();
  const owned = new OwnedDescriptors();
  const pool = new FallbackPool(owned);
  const page = pageSize();
  return {
    ...warmCalls(pool),
    ...residencyCalls(pool, page),
    ...cachedCalls(),

    advise(fd) {
      return checkAdvisable(fd);
    },

    ...sendCalls(pool),
    ...openCalls(owned),
    ...filesCalls(pool, owned, page),

    progress() {
      return null;
    },

    cancel(id) {
      pool.cancel(id);
    },

    configure(threads, chunkSize) {
      pool.configure(threads, chunkSize);
      return undefined;
    },

    chunkSize(): number {
      return pool.chunkSize;
    },

    stats() {
      return pool.stats();
    },

    capabilities() {
      return { cachestat: false, pageSize: page, zeroCopySend: false, nowaitReads: false };
    },
  };
}
