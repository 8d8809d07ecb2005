/**
 * Pool configuration, counters and capabilities.
 */
import { binding, isNative, fallbackReason } from './native';
import { unwrap } from './settle';
import { toIntInRange, toOptions } from './validate';

/** Options for {@link configure}. */
export interface ConfigureOptions {
  /**
   * pagewarm's native threads, 1..256. Default: one per CPU the process may
   * run on (`os.availableParallelism()`), at least 2 and at most 4; or env
   * PAGEWARM_THREADS.
   */
  threads?: number;
  /** Bytes warmed or sent per slice before a job yields to others: 4 KiB..1 GiB. Default 8 MiB. */
  chunkSize?: number;
}

/**
 * Sets the size of pagewarm's thread pool and its chunk size. The pool is
 * shared by the whole process (the main thread and every worker). Shrinking
 * it returns at once: each retiring thread exits when its current slice
 * returns (see {@link Stats.threads}), and the jobs it was serving go on on
 * the threads that stay.
 *
 * @throws TypeError / RangeError for bad values.
 */
export function configure(options: ConfigureOptions): void {
  const opts = toOptions<ConfigureOptions>(options);
  const threads = opts.threads === undefined ? 0 : toIntInRange(opts.threads, 'options.threads', 1, 256);
  const chunk = opts.chunkSize === undefined ? 0 : toIntInRange(opts.chunkSize, 'options.chunkSize', 4096, 2 ** 30);
  unwrap(binding.configure(threads, chunk));
}

import type { Stats } from './binding';
export type { Stats };

/** Counters and pool state, for the whole process. */
export function stats(): Stats {
  const s = binding.stats();
  s.waiting += copyingWaits;
  return s;
}

/** Copying sends whose current socket write is queued (see lib/send/socket.ts). */
let copyingWaits = 0;

/** @internal Counts a copying send in or out of {@link Stats.waiting}. */
export function noteCopyingWait(delta: 1 | -1): void {
  copyingWaits += delta;
}

/** What this process can do, see {@link capabilities}. */
export interface Capabilities {
  /** The native addon is loaded (else the portable fallback serves every call). */
  native: boolean;
  /** Why the fallback is in use, when it is. */
  fallbackReason?: string;
  /** Sends to plain sockets use sendfile(2) with no copy through JS. */
  zeroCopySend: boolean;
  /** cachestat(2) is available (Linux >= 6.5): residency counts and the fast path. */
  cachestat: boolean;
  /** Resident ranges settle without a thread hop. */
  fastPath: boolean;
  /** The system page size in bytes. */
  pageSize: number;
}

/** Reports which paths are active in this process. */
export function capabilities(): Capabilities {
  const caps = binding.capabilities();
  const out: Capabilities = {
    native: isNative,
    zeroCopySend: caps.zeroCopySend,
    cachestat: caps.cachestat,
    fastPath: caps.nowaitReads && caps.cachestat,
    pageSize: caps.pageSize,
  };
  if (fallbackReason !== undefined) out.fallbackReason = fallbackReason;
  return out;
}

const envThreads = process.env.PAGEWARM_THREADS;
if (envThreads !== undefined && envThreads !== '') {
  const n = Number(envThreads);
  if (Number.isInteger(n) && n >= 1 && n <= 256) configure({ threads: n });
  else process.emitWarning(`PAGEWARM_THREADS=${envThreads} ignored: it must be an integer from 1 to 256`);
}
