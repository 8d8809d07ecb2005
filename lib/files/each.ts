/**
 * The batch path for many files: paths go to pagewarm's threads in batches
 * (each file opened, described, worked on and closed there, many files a
 * job), and come back one settle per batch. {@link eachFile} is the
 * per-file view every many-files call (files.ts) and the CLI are built on.
 */
import { FILE_OUTCOME_FIELDS, type BudgetHandle, type FileOutcomes } from '../core/binding';
import { binding, nextId } from '../core/native';
import { settle, type Meter } from '../core/settle';
import { stats } from '../core/config';
import { invalidArgType, invalidArgValue, systemError, type SystemError } from '../core/errors';
import { throwIfAborted, toBoolean, toIntInRange, toOptions, toPosition, toSignal } from '../core/validate';

/** What the many-files calls do to each file. */
export type FilesOperation = 'warm' | 'residency' | 'evict';

/** Options of every many-files call. */
export interface EachFileOptions {
  /** Byte offset of the range in each file. Default 0. */
  offset?: number;
  /** Bytes of the range in each file. Default: to the end of each file. */
  length?: number;
  /** Follow a symbolic link that a path names (else it fails with `ELOOP`). Default true. */
  followSymlinks?: boolean;
  /** Skip files larger than this many bytes (reported with `skipped: 'max-size'`, never opened twice). Default: no limit. */
  maxSize?: number;
  /** Take block devices as well as regular files. Default false (`EINVAL`). */
  blockDevices?: boolean;
  /** Stops the work: in-flight batches are cancelled (within about one chunk) and the call rejects with an `AbortError`. */
  signal?: AbortSignal;
}

/** One file's outcome, in the order the paths were given. */
export interface FileReport {
  path: string;
  /** Why the file was not worked on: an error (`ENOENT ... open '/x'`, with `path`). */
  error?: SystemError;
  /** Left out by `maxSize`. */
  skipped?: 'max-size';
  /**
   * The same file (device and inode) as an earlier path of this call (a hard
   * link, or the same path twice): worked on again, but counted once.
   */
  duplicate: boolean;
  /** The file's size in bytes (0 when it failed). */
  size: number;
  /** The range in bytes, clamped to the size. */
  bytes: number;
  /** Pages the range touches. */
  pages: number;
  /** Of those, resident before the work; null where the kernel will not say (see `residency()`). */
  residentPagesBefore: number | null;
  /** Resident after the work (for 'residency', the same as before); null where unknown. */
  residentPages: number | null;
  source: 'cachestat' | 'mincore' | 'unknown';
  /** Device and inode, as `${dev}:${ino}`: what hard links share. */
  id: string;
  /** 'warm': bytes of the range that were not in the page cache and were read (the whole range where the kernel will not say). */
  readBytes: number;
  /** The budget ran out at or before this file: it was not (or not wholly) warmed. */
  stopped: boolean;
  /**
   * The resident pages as (first page, pages) pairs: only where the plan's
   * op is 3 (a map, as `pagewarm stat --map` asks), which covers whole files.
   * @internal
   */
  residentRanges?: number[];
}

const OPS = { warm: 0, residency: 1, evict: 2 } as const;
const SOURCES = ['cachestat', 'mincore', 'unknown'] as const;
/** The first batch is small so the first results come soon; later ones grow to MAX_BATCH. */
const FIRST_BATCH = 16;
const MAX_BATCH = 256;

/** The checked options. @internal */
export interface Plan {
  op: 0 | 1 | 2 | 3 | 4;
  offset: number;
  length: number;
  maxSize: number;
  flags: number;
  signal: AbortSignal | undefined;
  /** Warming and restoring stop once it is spent (see budget.ts). */
  budget?: BudgetHandle;
  /** Called before each batch is sent (a budget re-reads memory there). */
  beforeBatch?: () => void;
  /** Restore: the specs of a batch's paths (see Binding.files). */
  specs?: (paths: string[]) => Float64Array;
  /** A traced call: its jobs' figures go here (see lib/core/trace.ts). */
  meter?: Meter;
  /**
   * Told every `intervalMs` while batches run, how far the batches not yet
   * yielded have got: bytes done and, of those, bytes read from the disk
   * (files finished in them, and the file each is reading, chunk by chunk).
   */
  watch?: { intervalMs: number; report: (bytes: number, fromDisk: number) => void };
}

/** One batch's paths and what the binding said of them. @internal */
export interface Batch {
  paths: string[];
  outcomes: FileOutcomes;
  /** The budget stopped the work in this batch: no batch after it was sent. */
  stopped: boolean;
}

/** Checks `paths` (an iterable or async iterable) and the options; throws TypeError / RangeError. @internal */
export function toPlan(operation: FilesOperation, paths: unknown, options: unknown): Plan {
  if (typeof paths === 'string' || paths === null || typeof paths !== 'object' ||
      (typeof (paths as Iterable<unknown>)[Symbol.iterator] !== 'function' &&
       typeof (paths as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function')) {
    throw invalidArgType('paths', 'an iterable or async iterable of strings', paths);
  }
  const o = toOptions<EachFileOptions>(options);
  const signal = toSignal(o.signal);
  return {
    op: OPS[operation],
    offset: toPosition(o.offset, 'options.offset', 0),
    length: o.length === undefined ? -1 : toPosition(o.length, 'options.length', 0),
    maxSize: o.maxSize === undefined ? -1 : toIntInRange(o.maxSize, 'options.maxSize', 0, Number.MAX_SAFE_INTEGER),
    flags: (toBoolean(o.followSymlinks, 'options.followSymlinks', true) ? 1 : 0) |
      (toBoolean(o.blockDevices, 'options.blockDevices', false) ? 2 : 0),
    signal,
  };
}

/**
 * Works on every path of `paths` (an array, or any iterable or async
 * iterable of strings, read as the work goes) and yields one
 * {@link FileReport} per path, in order. Files are opened, described
 * (fstat), worked on and closed on pagewarm's threads (the portable fallback:
 * the libuv pool), in batches of up to 256 paths, as many batches at once as
 * there are pagewarm threads, twice over.
 *
 * - 'warm': every page of the range is read into the page cache
 *   (sendfile to /dev/null, as {@link prepareForRead}).
 * - 'residency': how much of the range is resident.
 * - 'evict': the range's clean pages dropped (POSIX_FADV_DONTNEED); a
 *   no-op in the portable fallback.
 *
 * A path that cannot be opened is reported with its `error` and the rest go
 * on. Breaking out of the loop cancels the batches in flight.
 * @throws TypeError / RangeError for bad arguments (a path that is not a
 *   string, among them, when it is reached); AbortError once the signal fires.
 */
export async function* eachFile(operation: FilesOperation, paths: Iterable<string> | AsyncIterable<string>, options?: EachFileOptions): AsyncGenerator<FileReport, void, undefined> {
  if (operation !== 'warm' && operation !== 'residency' && operation !== 'evict') {
    throw invalidArgValue('operation', operation, "must be 'warm', 'residency' or 'evict'");
  }
  const plan = toPlan(operation, paths, options);
  throwIfAborted(plan.signal);
  for await (const batch of batches(plan, paths)) yield* batch;
}

/**
 * eachFile once its arguments are checked, a batch of reports at a time (one
 * await a batch, not one a file: the CLI and the sums take them so). @internal
 */
export async function* batches(plan: Plan, paths: Iterable<string> | AsyncIterable<string>): AsyncGenerator<FileReport[], void, undefined> {
  const seen = new Set<string>();
  for await (const b of rawBatches(plan, paths)) {
    const reports = new Array<FileReport>(b.paths.length);
    let at = 0; // where path i's pairs start in b.outcomes.ranges (op 3)
    for (let i = 0; i < b.paths.length; i++) {
      reports[i] = report(b.paths[i]!, b.outcomes, i, seen);
      if (plan.op !== 3) continue;
      const pairs = b.outcomes.data[i * FILE_OUTCOME_FIELDS + 14]!;
      reports[i]!.residentRanges = Array.from(b.outcomes.ranges.subarray(at, at + 2 * pairs));
      at += 2 * pairs;
    }
    yield reports;
  }
}

/**
 * The batches themselves, in order, as the binding answered them; no batch
 * is sent after one the budget stopped. @internal
 */
export async function* rawBatches(plan: Plan, paths: Iterable<string> | AsyncIterable<string>): AsyncGenerator<Batch, void, undefined> {
  const source = Symbol.asyncIterator in paths ? (paths as AsyncIterable<string>)[Symbol.asyncIterator]() : undefined;
  const sync = source ? undefined : (paths as Iterable<string>)[Symbol.iterator]();
  const inFlight: Array<{ id: number; paths: string[]; done: Promise<FileOutcomes> }> = [];
  const most = Math.max(2, stats().configuredThreads * 2);
  let size = FIRST_BATCH;
  let stopped = false;
  let exhausted = false;
  let index = 0;
  const array = Array.isArray(paths) ? (paths as unknown[]) : undefined;
  const watch = plan.watch;
  const watcher = watch && setInterval(() => {
    let bytes = 0;
    let fromDisk = 0;
    for (const job of inFlight) {
      const p = binding.progress(job.id);
      if (p === null) continue; // settled: the caller counts it when it is yielded
      bytes += p[0];
      fromDisk += p[2];
    }
    watch.report(bytes, fromDisk);
  }, watch.intervalMs);
  watcher?.unref();
  const take = async (): Promise<string[]> => {
    if (array) {
      // An array is sliced, not iterated.
      const batch = array.slice(index, index + size) as string[];
      for (let i = 0; i < batch.length; i++) {
        if (typeof batch[i] !== 'string') throw invalidArgType(`paths[${index + i}]`, 'of type string', batch[i]);
      }
      index += batch.length;
      exhausted = index >= array.length;
      size = Math.min(MAX_BATCH, size * 2);
      return batch;
    }
    const batch: string[] = [];
    while (batch.length < size) {
      const next = sync ? sync.next() : await source!.next();
      if (next.done) {
        exhausted = true;
        break;
      }
      if (typeof next.value !== 'string') throw invalidArgType(`paths[${index}]`, 'of type string', next.value);
      index++;
      batch.push(next.value);
    }
    size = Math.min(MAX_BATCH, size * 2);
    return batch;
  };
  try {
    for (;;) {
      while (!exhausted && !stopped && inFlight.length < most) {
        const batch = await take();
        if (batch.length === 0) break;
        plan.beforeBatch?.();
        const id = nextId();
        const specs = plan.specs?.(batch);
        const done = settle(binding.files(plan.op, batch, plan.offset, plan.length, plan.maxSize, plan.flags, id, plan.budget, specs,
          plan.meter !== undefined), id, plan.signal, plan.meter);
        done.catch(() => {}); // awaited in turn below; never an unhandled rejection meanwhile
        inFlight.push({ id, paths: batch, done });
      }
      const first = inFlight.shift();
      if (!first) return;
      const outcomes = await first.done;
      // Aborted while this batch settled: nothing more is reported.
      throwIfAborted(plan.signal);
      let batchStopped = false;
      for (let i = 0; i < first.paths.length && !batchStopped; i++) batchStopped = outcomes.data[i * FILE_OUTCOME_FIELDS + 13] === 1;
      stopped ||= batchStopped;
      yield { paths: first.paths, outcomes, stopped: batchStopped };
    }
  } finally {
    if (watcher) clearInterval(watcher);
    // Stopped early (a break, an error, an abort): cancel what is still running.
    for (const job of inFlight) binding.cancel(job.id);
    await Promise.allSettled(inFlight.map((job) => job.done));
    await source?.return?.();
    sync?.return?.();
  }
}

/** The FileReport of path number `i` of a batch. */
function report(path: string, { data, syscalls }: FileOutcomes, i: number, seen: Set<string>): FileReport {
  const f = data.subarray(i * FILE_OUTCOME_FIELDS, (i + 1) * FILE_OUTCOME_FIELDS);
  const err = f[0]!;
  // The inode in two halves keeps 64-bit inode numbers exact.
  const id = `${f[3]}:${f[4] === 0 ? f[5] : (BigInt(f[4]!) << 32n) | BigInt(f[5]!)}`;
  const before = f[7]!;
  const after = f[8]!;
  const r: FileReport = {
    path,
    duplicate: false,
    size: f[1]!,
    bytes: f[2]!,
    pages: f[6]!,
    residentPagesBefore: before < 0 ? null : before,
    residentPages: after < 0 ? null : after,
    source: SOURCES[f[9]!] ?? 'unknown',
    id,
    readBytes: f[12]!,
    stopped: f[13] === 1,
  };
  if (err > 0) {
    const e = systemError({ errno: err, syscall: syscalls[i] ?? 'open' });
    e.message += ` '${path}'`;
    (e as SystemError & { path: string }).path = path;
    r.error = e;
    return r;
  }
  if (err === -1) r.skipped = 'max-size';
  if (r.stopped || err === -2) return r; // not done: never counted, never a duplicate of a later path
  if (seen.has(id)) r.duplicate = true;
  else seen.add(id);
  return r;
}
