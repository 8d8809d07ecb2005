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

/** Process-wide counters, see {@link stats}. */
export interface Stats {
  /** Bytes covered by warm-ups since the process started. */
  warmedBytes: number;
  /** Warm-ups settled on the JS thread because the range was already resident. */
  fastPathHits: number;
  /** Chunks warmed by sendfile to /dev/null. */
  sendfileChunks: number;
  /** Chunks warmed by reading, where the filesystem cannot splice (or in the fallback). */
  fallbackReads: number;
  /** Warm-ups of O_DIRECT descriptors served through a buffered reopen. */
  directReopens: number;
  /**
   * Sends begun on the JS thread with no thread hop: a range of at most
   * 128 KiB, all in the page cache, to a non-blocking destination (what the
   * destination does not take at once goes on to pagewarm's threads).
   */
  inlineSends: number;
  /** Jobs waiting for a thread. */
  queued: number;
  /** Jobs running a slice now. */
  active: number;
  /**
   * Sends waiting for their socket to become writable: native sends parked
   * in pagewarm's poller, plus copying sends (TLS, the fallback) whose last
   * write the kernel could not take at once.
   */
  waiting: number;
  /**
   * pagewarm's native threads running now: 0 before the first job, and
   * threads that {@link configure} retired or the last environment's
   * teardown stopped still count until their current slice returns (a read
   * from a hung or throttled disk can take minutes). The fallback has no
   * threads of its own and reports {@link configuredThreads}.
   */
  threads: number;
  /** The configured thread count (`configure({ threads })`, or the default). */
  configuredThreads: number;
  /** Configured chunk size in bytes. */
  chunkSize: number;
}

/** Counters and pool state, for the whole process. */
export function stats(): Stats {
  const s = binding.stats();
  s.waiting += copyingWaits;
  return s;
}

/** Copying sends whose current socket write is queued (see lib/socket.ts). */
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
    zeroCopySend: isNative,
    cachestat: caps.cachestat,
    fastPath: isNative && caps.cachestat,
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
