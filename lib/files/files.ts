/**
 * Many files at once: warmFiles, evictFiles and filesResidency, each the sum
 * of {@link eachFile}'s per-file reports, with progress.
 */
import { capabilities } from '../core/config';
import { invalidArgType } from '../core/errors';
import { throwIfAborted, toOptions } from '../core/validate';
import { batches, toPlan, type EachFileOptions, type FileReport, type FilesOperation } from './each';
import { Budget, toBudgetSpec } from './budget';
import type { Meter } from '../core/settle';
import { activeChannel, traceAsync } from '../core/trace';

/** How far a many-files call has got, for `onProgress`. */
export interface FilesProgress {
  /** Paths done (failed, skipped and repeated ones included). */
  files: number;
  /** Bytes of the ranges of the files done. */
  bytes: number;
  /** warmFiles: bytes that were not in the page cache and were read. */
  warmedBytes: number;
  /** warmFiles: the same as warmedBytes (the name every onProgress shares). */
  fromDisk: number;
  /** Bytes of the ranges of all the files: -1 until the last path is known (paths are read as the work goes). */
  total: number;
}

/** Options of warmFiles, evictFiles and filesResidency. */
export interface FilesOptions extends EachFileOptions {
  /**
   * Called as files are done, at most every `progressIntervalMs`, and once at
   * the end (unless the call fails). Exceptions it throws are not caught.
   */
  onProgress?: (progress: FilesProgress) => void;
  /** Default 100. 0: after every batch. */
  progressIntervalMs?: number;
  /**
   * warmFiles: the most to read from the disk (bytes that were not resident),
   * as a byte count or a percentage of the memory this process can fill (the
   * lower of MemAvailable and its memory cgroup's headroom, re-read before
   * every batch; see docs/api.md). At the budget warming stops, file by file,
   * and the result says `stoppedBy: 'budget'`. Default: none.
   */
  budget?: number | string;
}

/** A path that could not be worked on, and why. */
export interface FileFailure {
  path: string;
  error: Error;
}

/** What the many-files calls resolve with (each a little more, below). */
export interface FilesResult {
  /** Files worked on: regular files opened and done, each hard-linked file once. */
  files: number;
  /** Bytes of their ranges. */
  bytes: number;
  /** Paths that failed (not found, unreadable, not a regular file, ...); the rest were still done. */
  failed: FileFailure[];
  /** Files left out by `maxSize`. */
  skipped: number;
  /** Why warming stopped before every file was done: the budget was spent. */
  stoppedBy?: 'budget';
}

/** What {@link warmFiles} resolves with. */
export interface WarmFilesResult extends FilesResult {
  /**
   * Bytes that were not in the page cache before and were read now (to page
   * granularity; the whole range of a file whose residency the kernel will
   * not tell this process).
   */
  warmedBytes: number;
}

/** What {@link evictFiles} resolves with. */
export interface EvictFilesResult extends FilesResult {
  /** Bytes that left the page cache (to page granularity; 0 where the kernel will not say). */
  evictedBytes: number;
  /** Bytes still resident after the eviction (dirty, mapped or locked pages stay). */
  residentBytes: number;
}

/** What {@link filesResidency} resolves with. */
export interface FilesResidencyResult extends FilesResult {
  /** Bytes resident, of the files whose residency the kernel reports. */
  residentBytes: number;
  /** Files whose residency the kernel will not tell this process (`source: 'unknown'`). */
  unknown: number;
}

/**
 * Brings every file of `paths` into the page cache: each opened, warmed and
 * closed on pagewarm's threads, many files a job, so a tree of small files
 * costs a few system calls a file and one settle a batch.
 *
 * @param paths An array, or any iterable or async iterable of paths (read as the work goes).
 * @throws (as a rejection) TypeError / RangeError for bad arguments; AbortError.
 */
export async function warmFiles(paths: Iterable<string> | AsyncIterable<string>, options?: FilesOptions): Promise<WarmFilesResult> {
  const ch = activeChannel('warmFiles');
  if (ch === undefined) return warmAll(paths, options, undefined);
  return traceAsync(ch, { paths: Array.isArray(paths) ? paths : undefined }, (meter) => warmAll(paths, options, meter));
}

async function warmAll(paths: Iterable<string> | AsyncIterable<string>, options: FilesOptions | undefined,
  meter: Meter | undefined): Promise<WarmFilesResult> {
  const sum = await total('warm', paths, options, meter);
  if (meter) meter.fromDisk = sum.warmedBytes; // the same figure, also where the binding is not traced (the fallback)
  const r: WarmFilesResult = { files: sum.files, bytes: sum.bytes, warmedBytes: sum.warmedBytes, failed: sum.failed, skipped: sum.skipped };
  if (sum.stoppedBy) r.stoppedBy = sum.stoppedBy;
  return r;
}

/**
 * Drops the clean pages of every file of `paths` from the page cache
 * (POSIX_FADV_DONTNEED), on pagewarm's threads, many files a job. Dirty,
 * mapped or locked pages stay. In the portable fallback nothing is evicted.
 * @throws (as a rejection) as {@link warmFiles}.
 */
export async function evictFiles(paths: Iterable<string> | AsyncIterable<string>, options?: FilesOptions): Promise<EvictFilesResult> {
  const sum = await total('evict', paths, options);
  return {
    files: sum.files, bytes: sum.bytes, evictedBytes: sum.evictedBytes, residentBytes: sum.residentBytes,
    failed: sum.failed, skipped: sum.skipped,
  };
}

/**
 * How much of every file of `paths` is in the page cache, summed. For each
 * file's own answer, iterate {@link eachFile}('residency', paths).
 * @throws (as a rejection) as {@link warmFiles}.
 */
export async function filesResidency(paths: Iterable<string> | AsyncIterable<string>, options?: FilesOptions): Promise<FilesResidencyResult> {
  const sum = await total('residency', paths, options);
  return {
    files: sum.files, bytes: sum.bytes, residentBytes: sum.residentBytes, unknown: sum.unknown,
    failed: sum.failed, skipped: sum.skipped,
  };
}

interface Sum extends FilesResult {
  warmedBytes: number;
  evictedBytes: number;
  residentBytes: number;
  unknown: number;
}

const PAGE = capabilities().pageSize;

/** Adds one file's report to the sums. */
function add(sum: Sum, r: FileReport, operation: FilesOperation): void {
  if (r.error) {
    sum.failed.push({ path: r.path, error: r.error });
    return;
  }
  if (r.skipped) {
    sum.skipped++;
    return;
  }
  if (operation === 'warm') sum.warmedBytes += r.readBytes;
  if (r.stopped) {
    sum.stoppedBy = 'budget';
    return;
  }
  if (r.duplicate) return;
  sum.files++;
  sum.bytes += r.bytes;
  const before = r.residentPagesBefore;
  const after = r.residentPages;
  if (operation === 'evict' && before !== null && after !== null) sum.evictedBytes += pageBytes(before, r) - pageBytes(after, r);
  if (after === null) sum.unknown++;
  else sum.residentBytes += pageBytes(after, r);
}

/** Bytes of `pages` pages of a range of `bytes` bytes (the last page may be short). */
function pageBytes(pages: number, report: FileReport): number {
  return pages >= report.pages ? report.bytes : Math.min(report.bytes, pages * PAGE);
}

async function total(operation: FilesOperation, paths: Iterable<string> | AsyncIterable<string>, options: FilesOptions | undefined,
  meter?: Meter): Promise<Sum> {
  const plan = toPlan(operation, paths, options);
  plan.meter = meter;
  const o = toOptions<FilesOptions>(options);
  const onProgress = o.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw invalidArgType('options.onProgress', 'of type function', onProgress);
  const interval = o.progressIntervalMs ?? 100;
  if (typeof interval !== 'number' || !(interval >= 0)) throw invalidArgType('options.progressIntervalMs', 'a number >= 0', interval);
  const spec = toBudgetSpec(o.budget);
  if (spec && operation === 'warm') {
    const budget = new Budget(spec);
    plan.budget = budget.handle;
    plan.beforeBatch = () => budget.check();
  }
  throwIfAborted(plan.signal);

  const sum: Sum = { files: 0, bytes: 0, failed: [], skipped: 0, warmedBytes: 0, evictedBytes: 0, residentBytes: 0, unknown: 0 };
  let done = 0;
  let last = performance.now();
  // Files done, plus how far the batches still running have got (chunk by chunk).
  const report = (bytes: number, fromDisk: number, total: number): void => {
    if (plan.signal?.aborted) return; // nothing is reported once the call is aborted
    last = performance.now();
    const warmed = operation === 'warm' ? sum.warmedBytes + fromDisk : 0;
    onProgress!({ files: done, bytes: sum.bytes + bytes, warmedBytes: warmed, fromDisk: warmed, total });
  };
  if (onProgress) {
    plan.watch = {
      intervalMs: Math.max(10, interval),
      report: (bytes, fromDisk) => {
        if (performance.now() - last >= interval) report(bytes, fromDisk, -1);
      },
    };
  }
  for await (const batch of batches(plan, paths)) {
    for (const r of batch) add(sum, r, operation);
    done += batch.length;
    if (onProgress && performance.now() - last >= interval) report(0, 0, -1);
  }
  if (onProgress) report(0, 0, sum.bytes);
  return sum;
}
