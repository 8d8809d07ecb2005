/**
 * The one interface between the public API and what implements it: the
 * native addon or the portable fallback (lib/fallback/), chosen once by
 * lib/core/native.ts. Types and one constant: this module imports nothing at run time, so
 * the loader, the fallback and the modules that use the binding never form
 * an import cycle through it.
 */
import type { NativeFailure } from './errors';

/** Process-wide counters, see `stats()` in config.ts. */
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
  /**
   * Bytes that pagewarm's warm-ups (prepareForRead, warmFile, warmFiles,
   * restore, and sendFile's warming ahead) found not in the page cache and
   * read from the disk: the waits the event loop was spared. Bytes whose
   * residency the kernel will not tell this process count as read. The
   * fallback: 0 (it cannot tell).
   */
  fromDiskBytes: number;
  /** Jobs handed to pagewarm's threads since the process started. */
  jobs: number;
  /** Their time waiting for a thread, summed, in milliseconds (the fallback: 0). */
  queuedMs: number;
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

/**
 * What {@link Binding.files} resolves with. `data` holds FILE_OUTCOME_FIELDS
 * numbers per path: err (0; a positive errno, the failed call in `syscalls`
 * at the same index; -1 skipped as larger than maxSize; -2 not the file a
 * restore expected), size, bytes (the range clamped to the size), dev, the
 * inode's high and low 32 bits, pages, resident pages before and after the
 * work (-1 where the kernel would not say), source (0 cachestat, 1 mincore,
 * 2 unknown), mtime seconds and nanoseconds, bytes read from the disk, 1 when
 * the budget stopped the work at or before this file, and the number of
 * resident (first page, pages) pairs the file has in `ranges` (op 3), which
 * holds every file's pairs one after the other.
 */
export interface FileOutcomes {
  data: Float64Array;
  syscalls: Array<string | undefined>;
  ranges: Float64Array;
}

/** Numbers per path in {@link FileOutcomes.data}. */
export const FILE_OUTCOME_FIELDS = 15;

/** A budget shared by files() jobs: opaque (a native External, or the fallback's object). */
export type BudgetHandle = { readonly __budget: unique symbol } | object;

/** The binding's counters: the public {@link Stats}, field for field. */
export type NativeStats = Stats;

/**
 * The binding. Lengths of -1 mean "to the end of the file". Async calls
 * return a number when settled on the JS thread, a Promise otherwise, or a
 * NativeFailure for errors found before any work began; the promises reject
 * with NativeFailure objects.
 */
/** What a binding can do; the only way code outside the loader learns which binding it has. */
export interface BindingCapabilities {
  /** cachestat(2) answers residency (Linux >= 6.5). */
  cachestat: boolean;
  /** The system page size in bytes. */
  pageSize: number;
  /** sendfile/sendRange move file bytes to a socket in the kernel (no copy through JS). */
  zeroCopySend: boolean;
  /** readCached never waits for the disk (preadv2 RWF_NOWAIT, or it declines). */
  nowaitReads: boolean;
}

/** What a traced call resolves with (see Binding.warm): its value, and what the tracing channels report. */
export interface Traced<T> {
  value: T;
  /** Bytes that were not in the page cache when the job read them. */
  fromDisk: number;
  /** Milliseconds the job waited for a pool thread. */
  queuedMs: number;
}

export interface Binding {
  /**
   * With `traced`, a call that goes to pagewarm's threads resolves with
   * `Traced<number>` instead (as do residency, files and warmSync with it):
   * the bytes it found not resident and its wait for a thread. The
   * fallback ignores `traced`.
   */
  warm(fd: number, offset: number, length: number, id: number, traced?: boolean): number | Promise<number | Traced<number>> | NativeFailure;
  warmSync(fd: number, offset: number, length: number, traced?: boolean): number | Traced<number> | NativeFailure;
  residency(fd: number, offset: number, length: number, id: number, traced?: boolean): Promise<NativeResidency | Traced<NativeResidency>> | NativeFailure;
  residencySync(fd: number, offset: number, length: number): NativeResidency | NativeFailure;
  advise(fd: number, offset: number, length: number, advice: number): undefined | NativeFailure;
  /**
   * Warms (op 0), asks the residency of (1), evicts (2), maps the resident
   * pages of (3) or restores listed pages of (4) each of `paths`, opening,
   * describing and closing every file off the JS thread, many files a job:
   * one settle for the batch. flags: 1 follow a final symbolic link (else
   * ELOOP), 2 take block devices (else EINVAL). maxSize -1: no limit.
   * `budget` (from {@link Binding.budget}): warming and restoring stop, file
   * by file (restore: range by range), once it is spent. `specs` (op 4): per
   * path `[dev, ino high, ino low, size, mtime s, mtime ns, n, then n
   * (first page, pages) pairs]`; a file that differs is not read.
   * Resolves with one outcome per path, in order: see {@link FileOutcomes}.
   */
  files(op: 0 | 1 | 2 | 3 | 4, paths: string[], offset: number, length: number, maxSize: number, flags: number, id: number,
    budget?: BudgetHandle, specs?: Float64Array, traced?: boolean): Promise<FileOutcomes | Traced<FileOutcomes>> | NativeFailure;
  /** A budget of `limit` bytes that may be read from the disk, shared by the files() jobs given it. */
  budget(limit: number): BudgetHandle;
  /** Bytes read so far against `budget`; with `limit`, sets its limit first. */
  budgetLimit(budget: BudgetHandle, limit?: number): number;
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
   * it. Returns 0 (ok), 1 (outside realRoot), or a NativeFailure like every
   * other call: syscall `stat` when stat(path) failed, `readlink` when fd's
   * real path could not be read.
   */
  revalidate(path: string, fd: number, realRoot: string | null, out: Float64Array): 0 | 1 | NativeFailure;
  send(outFd: number, inFd: number, offset: number, length: number, id: number, traced?: boolean): number | Promise<number | Traced<number>> | NativeFailure;
  sendSync(outFd: number, inFd: number, offset: number, length: number, traced?: boolean): number | Traced<number> | NativeFailure;
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
  /**
   * `[bytes done, total (-1 unknown), bytes that were not resident]` of a job
   * in flight, or null once it has settled (the fallback: always null).
   */
  progress(id: number): [number, number, number] | null;
  configure(threads: number, chunkSize: number): undefined | NativeFailure;
  stats(): NativeStats;
  /** stats().chunkSize alone, cheaply. */
  chunkSize(): number;
  capabilities(): BindingCapabilities;
  /**
   * Test-only switches, not API (docs/api.md does not name it; the fallback
   * lacks it). They apply to the calling environment only (the main thread,
   * or the one worker that set them): forceReadFallback warms by read(2) as
   * where splice is unsupported; noNowaitReads makes readCached answer
   * EOPNOTSUPP as where RWF_NOWAIT is.
   */
  _testOnlySetFlags?(flags: { forceReadFallback?: boolean; noNowaitReads?: boolean }): void;
}
