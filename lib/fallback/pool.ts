/**
 * The fallback's stand-in for the native pool: like it, at most `threads`
 * reads run at once, one chunk each, first come first served, so a small
 * warm-up is not stuck behind a large one. The reads themselves run on the
 * libuv threadpool (there is no other way to read off the JS thread in
 * Node), which the native addon avoids.
 *
 * Async jobs work on a private reopen of the descriptor (see ./inspect), so
 * a JS close() during the operation cannot redirect them to a reused
 * descriptor number. The pool also tracks jobs for cancel() and keeps the
 * counters stats() reports.
 */
import * as fs from 'node:fs';
import { availableParallelism, constants as osConstants } from 'node:os';
import type { NativeStats } from '../core/binding';
import type { NativeFailure } from '../core/errors';
import { reopen, type FdInfo } from './inspect';
import type { OwnedDescriptors } from './open';

const E = osConstants.errno;
/** Bytes of the scratch buffer warm-ups read into, and so the most one read asks for. */
const SCRATCH = 1 << 20;

/**
 * The failure of a job cancelled through its AbortSignal: ECANCELED under
 * `syscall`, with `bytesSent` for a send.
 */
export function aborted(syscall: string, bytesSent?: number): NativeFailure {
  return bytesSent === undefined
    ? { errno: E.ECANCELED, syscall, aborted: true }
    : { errno: E.ECANCELED, syscall, aborted: true, bytesSent };
}

/** The slots, jobs in flight and counters of one fallback binding (one per thread). */
export class FallbackPool {
  /** What stats() counts of the fallback's work. */
  readonly counters = { warmedBytes: 0, fallbackReads: 0, directReopens: 0, jobs: 0 };
  /** Sends backing off from a full non-blocking destination. */
  waiting = 0;
  /** Configured chunk size in bytes. */
  chunkSize = 8 << 20;
  /** Configured reads at once. */
  threads = defaultThreads();
  private readonly slots = new Slots(this.threads);
  private readonly cancelled = new Set<number>();
  private readonly running = new Set<number>();
  private scratch: Buffer | undefined;

  constructor(private readonly owned: OwnedDescriptors) {}

  /** The buffer every warm-up reads into: warm-ups drop what they read, so they can share it. */
  warmBuffer(): Buffer {
    return (this.scratch ??= Buffer.allocUnsafe(SCRATCH));
  }

  /** Bytes one read asks for: the chunk size, at most the scratch buffer's size. */
  readSize(): number {
    return Math.min(this.chunkSize, SCRATCH);
  }

  /**
   * Reads one chunk of `fd` at `position` into `buf`, in a slot (waiting for
   * one first come first served), on the libuv threadpool. Resolves with the
   * bytes read; rejects with Node's fs error.
   */
  async readChunk(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
    await this.slots.acquire();
    try {
      const bytesRead = await new Promise<number>((resolve, reject) =>
        fs.read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))),
      );
      return bytesRead;
    } finally {
      this.slots.release();
    }
  }

  /**
   * Runs async job `id` on a private descriptor (`reopened`, which the pool
   * then owns and closes when the job settles; when there is none, the
   * caller's `fd`), tracked for cancel() until it settles.
   */
  start<T>(id: number, fd: number, info: FdInfo, work: (fd: number) => Promise<T>, reopened = reopen(fd)): Promise<T> {
    const mine = reopened === undefined ? undefined : this.owned.own(reopened);
    if (mine !== undefined && info.direct) this.counters.directReopens++;
    this.track(id);
    return (async () => {
      try {
        return await work(mine ?? fd);
      } finally {
        this.owned.disown(mine);
        this.settle(id);
      }
    })();
  }

  /**
   * A private buffered descriptor for a sync call on an O_DIRECT fd, which
   * the caller closes (`reopened`); else the caller's own fd.
   */
  syncFd(fd: number, info: FdInfo): { fd: number; reopened?: number } {
    if (!info.direct) return { fd };
    const reopened = reopen(fd);
    if (reopened === undefined) return { fd };
    this.counters.directReopens++;
    return { fd: reopened, reopened };
  }

  /** Marks job `id` as running, so that cancel(id) takes. */
  track(id: number): void {
    this.running.add(id);
    this.counters.jobs++;
  }

  /** Ends job `id`'s tracking; true when it was cancelled meanwhile. */
  settle(id: number): boolean {
    this.running.delete(id);
    return this.cancelled.delete(id);
  }

  /** True when job `id` was cancelled: the job stops before its next chunk. */
  isCancelled(id: number): boolean {
    return this.cancelled.has(id);
  }

  /** Cancels job `id` if it is running; otherwise does nothing. */
  cancel(id: number): void {
    if (this.running.has(id)) this.cancelled.add(id);
  }

  /** Sets the reads at once and the chunk size; values of 0 or less leave them as they are. */
  configure(threads: number, chunkSize: number): void {
    if (threads > 0) {
      this.threads = threads;
      this.slots.resize(threads);
    }
    if (chunkSize > 0) this.chunkSize = chunkSize;
  }

  /** The binding's stats(): the native-only counters stay 0. */
  stats(): NativeStats {
    return {
      warmedBytes: this.counters.warmedBytes,
      fastPathHits: 0,
      inlineSends: 0,
      sendfileChunks: 0,
      fallbackReads: this.counters.fallbackReads,
      directReopens: this.counters.directReopens,
      fromDiskBytes: 0,
      jobs: this.counters.jobs,
      queuedMs: 0,
      queued: this.slots.queued,
      active: this.slots.running,
      waiting: this.waiting,
      threads: this.threads,
      configuredThreads: this.threads,
      chunkSize: this.chunkSize,
    };
  }
}

/** The native pool's default size: one per CPU, at least 2, at most 4 (see src/pool.cc). */
function defaultThreads(): number {
  return Math.min(4, Math.max(2, availableParallelism()));
}

/** A counting semaphore, first come first served: the fallback's "threads". */
class Slots {
  private free: number;
  private readonly waiters: Array<() => void> = [];
  running = 0;

  constructor(private size: number) {
    this.free = size;
  }

  get queued(): number {
    return this.waiters.length;
  }

  acquire(): Promise<void> | undefined {
    if (this.free > 0 && this.waiters.length === 0) {
      this.free--;
      this.running++;
      return undefined;
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    this.running--;
    this.free++;
    this.wake();
  }

  resize(size: number): void {
    this.free += size - this.size;
    this.size = size;
    this.wake();
  }

  private wake(): void {
    while (this.free > 0 && this.waiters.length > 0) {
      this.free--;
      this.running++;
      this.waiters.shift()!();
    }
  }
}
