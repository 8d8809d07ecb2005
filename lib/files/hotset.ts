/**
 * A hot set that survives restarts, as PostgreSQL's autoprewarm does for its
 * buffers, for any files: snapshot() records which pages of which files are
 * in the page cache; restore() reads back those that are not, of files that
 * are still the same, within a budget; keepSnapshot() rewrites a snapshot
 * file every interval. The file format is in hotset-format.ts.
 */
import * as fs from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { FILE_OUTCOME_FIELDS } from '../core/binding';
import { capabilities } from '../core/config';
import { invalidArgType, systemError } from '../core/errors';
import { throwIfAborted, toIntInRange, toOptions, toSignal } from '../core/validate';
import { rawBatches, type Plan } from './each';
import type { Meter } from '../core/settle';
import { activeChannel, traceAsync } from '../core/trace';
import { Budget, toBudgetSpec } from './budget';
import { Walk } from './walk';
import { checkHotSet, decodeHotSet, encodeHotSet, type HotFile, type HotSet } from './hotset-format';

export { SnapshotError, type HotFile, type HotSet } from './hotset-format';

/** Options of {@link snapshot}. */
export interface SnapshotOptions {
  /** Follow symbolic links in the walk. Default false. */
  followSymlinks?: boolean;
  /** Enter directories on other filesystems. Default false. */
  crossMounts?: boolean;
  signal?: AbortSignal;
}

/**
 * Records, for every regular file under `paths` (files and directories,
 * walked as the `pagewarm` command walks them), its identity (device,
 * inode, size, modification time in nanoseconds) and its resident pages,
 * page by page (mincore over bounded mappings, on pagewarm's threads). Files
 * whose residency the kernel will not tell this process (not their owner,
 * no permission to write them, no CAP_FOWNER) are listed with `source:
 * 'unknown'` and no ranges: never as hot. Unreadable files are left out.
 * In the portable fallback every file is 'unknown'.
 * @throws (as a rejection) TypeError for bad arguments; AbortError.
 */
export async function snapshot(paths: string | string[], options?: SnapshotOptions): Promise<HotSet> {
  const list = typeof paths === 'string' ? [paths] : paths;
  if (!Array.isArray(list) || !list.every((p) => typeof p === 'string')) throw invalidArgType('paths', 'a string or an array of strings', paths);
  const o = toOptions<SnapshotOptions>(options);
  const signal = toSignal(o.signal);
  throwIfAborted(signal);
  const walk = new Walk({ paths: list, maxDepth: Infinity, dereference: o.followSymlinks === true, crossMounts: o.crossMounts === true, include: [], exclude: [] }, () => {}, () => {});
  function* files(): Generator<string> {
    for (const run of walk.walk()) yield* run;
  }
  const plan: Plan = { op: 3, offset: 0, length: -1, maxSize: -1, flags: o.followSymlinks ? 1 : 0, signal };
  const out: HotFile[] = [];
  const seen = new Set<string>();
  for await (const b of rawBatches(plan, files())) {
    const { data, ranges } = b.outcomes;
    let at = 0;
    for (let i = 0; i < b.paths.length; i++) {
      const f = data.subarray(i * FILE_OUTCOME_FIELDS, (i + 1) * FILE_OUTCOME_FIELDS);
      const pairs = f[14]!;
      const mine = Array.from(ranges.subarray(at, at + 2 * pairs));
      at += 2 * pairs;
      if (f[0] !== 0) continue; // gone or unreadable since the walk
      const ino = f[4] === 0 ? String(f[5]) : String((BigInt(f[4]!) << 32n) | BigInt(f[5]!));
      const key = `${f[3]}:${ino}`;
      if (seen.has(key)) continue; // a hard link: the first path stands for the file
      seen.add(key);
      out.push({
        path: b.paths[i]!, dev: f[3]!, ino, size: f[1]!,
        mtimeNs: String(BigInt(f[10]!) * 1_000_000_000n + BigInt(f[11]!)),
        source: f[9] === 2 ? 'unknown' : 'pages', ranges: f[9] === 2 ? [] : mine,
      });
    }
  }
  return { format: 'pagewarm-hotset', version: 1, pageSize: capabilities().pageSize, created: new Date().toISOString(), files: out };
}

/** Writes a hot set to `file` atomically: a temporary file beside it, fsync, rename, fsync of the directory. */
export async function saveHotSet(file: string, set: HotSet): Promise<void> {
  if (typeof file !== 'string') throw invalidArgType('file', 'of type string', file);
  checkHotSet(set, 'hotSet', false);
  const bytes = encodeHotSet(set);
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fh = await fs.promises.open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  const dir = await fs.promises.open(dirname(file), 'r');
  try {
    await dir.sync();
  } catch {
    // some file systems refuse fsync of a directory: the rename stands
  } finally {
    await dir.close();
  }
}

/** Reads a hot set file. @throws (as a rejection) SnapshotError (code ERR_PAGEWARM_SNAPSHOT) for a file that is not one, or corrupt or truncated; fs errors. */
export async function loadHotSet(file: string): Promise<HotSet> {
  if (typeof file !== 'string') throw invalidArgType('file', 'of type string', file);
  return decodeHotSet(await fs.promises.readFile(file), file);
}

/** Options of {@link restore}. */
export interface RestoreOptions {
  /** The most to read from the disk: bytes, or a percentage such as '50%' of the memory this process can fill (see warmFiles). */
  budget?: number | string;
  signal?: AbortSignal;
  /** `({ files, restoredBytes })`, at most every `progressIntervalMs` (default 100) and at the end. */
  onProgress?: (progress: RestoreProgress) => void;
  progressIntervalMs?: number;
}

/** A file restore() left alone, and why. */
export interface RestoreSkip {
  path: string;
  /** 'changed': not the file snapshotted (device, inode, size or mtime differ); 'missing': gone; 'unknown': its residency was not known when snapshotted; 'failed': see error. */
  reason: 'changed' | 'missing' | 'unknown' | 'failed';
  error?: Error;
}

/** What {@link restore} resolves with. */
export interface RestoreResult {
  /** Files checked and unchanged (their listed pages now resident, unless stopped). */
  files: number;
  /** Bytes read from the disk: listed pages that were not resident. */
  restoredBytes: number;
  skipped: RestoreSkip[];
  /** Set when restoring stopped before the end: the budget was spent. */
  stoppedBy?: 'budget';
}

/**
 * Reads back the pages of a hot set ({@link snapshot}'s result, or a file
 * saveHotSet or keepSnapshot wrote) that are not resident now, of files
 * whose identity still matches (device, inode, size, mtime; others are
 * skipped and reported, never read), on pagewarm's threads, many files a
 * job. With a `budget`, restoring stops range by range once it is spent
 * (`stoppedBy: 'budget'`): files come in the hot set's order.
 * @throws (as a rejection) SnapshotError for a bad hot set (nothing is read);
 *   TypeError / RangeError for bad options; AbortError.
 */
export async function restore(hotSetOrFile: HotSet | string, options?: RestoreOptions): Promise<RestoreResult> {
  const ch = activeChannel('restore');
  if (ch === undefined) return restoreAll(hotSetOrFile, options, undefined);
  const context = typeof hotSetOrFile === 'string' ? { path: hotSetOrFile } : {};
  return traceAsync(ch, context, (meter) => restoreAll(hotSetOrFile, options, meter));
}

/** How far restore has got, for `onProgress`. */
export interface RestoreProgress {
  /** Files restored so far. */
  files: number;
  /** Bytes of the hot set's ranges handled so far (resident already, or read). */
  bytes: number;
  /** Bytes of all the hot set's ranges (of files whose residency was known). */
  total: number;
  /** Of `bytes`, those read from the disk (= restoredBytes). */
  fromDisk: number;
  /** Bytes read from the disk so far. */
  restoredBytes: number;
}

async function restoreAll(hotSetOrFile: HotSet | string, options: RestoreOptions | undefined, meter: Meter | undefined): Promise<RestoreResult> {
  const o = toOptions<RestoreOptions>(options);
  const signal = toSignal(o.signal);
  const spec = toBudgetSpec(o.budget);
  const onProgress = o.onProgress;
  if (onProgress !== undefined && typeof onProgress !== 'function') throw invalidArgType('options.onProgress', 'of type function', onProgress);
  const interval = o.progressIntervalMs === undefined ? 100 : toIntInRange(o.progressIntervalMs, 'options.progressIntervalMs', 0, 2 ** 31 - 1);
  throwIfAborted(signal);
  const set = typeof hotSetOrFile === 'string' ? await loadHotSet(hotSetOrFile) : checkHotSet(hotSetOrFile, 'hotSet', false);
  const scale = set.pageSize / capabilities().pageSize; // a snapshot from a machine with other pages
  const result: RestoreResult = { files: 0, restoredBytes: 0, skipped: [] };
  const byPath = new Map<string, HotFile>();
  const paths: string[] = [];
  for (const f of set.files) {
    if (f.source === 'unknown') result.skipped.push({ path: f.path, reason: 'unknown' });
    else if (f.ranges.length > 0 && !byPath.has(f.path)) {
      byPath.set(f.path, f);
      paths.push(f.path);
    }
  }
  const plan: Plan = { op: 4, offset: 0, length: -1, maxSize: -1, flags: 1, signal, specs: (batch) => specsOf(batch, byPath, scale), meter };
  let total = 0;
  for (const f of byPath.values()) for (let k = 1; k < f.ranges.length; k += 2) total += f.ranges[k]! * set.pageSize;
  let bytes = 0;
  const progress = (): RestoreProgress => ({ files: result.files, bytes, total, fromDisk: result.restoredBytes, restoredBytes: result.restoredBytes });
  if (spec) {
    const budget = new Budget(spec);
    plan.budget = budget.handle;
    plan.beforeBatch = () => budget.check();
  }
  let last = performance.now();
  if (onProgress) {
    plan.watch = {
      intervalMs: Math.max(10, interval),
      report: (running, fromDisk) => {
        if (signal?.aborted || performance.now() - last < interval) return;
        last = performance.now();
        const p = progress();
        onProgress({ ...p, bytes: p.bytes + running, fromDisk: p.fromDisk + fromDisk, restoredBytes: p.restoredBytes + fromDisk });
      },
    };
  }
  for await (const b of rawBatches(plan, paths)) {
    const { data, syscalls } = b.outcomes;
    for (let i = 0; i < b.paths.length; i++) {
      const f = data.subarray(i * FILE_OUTCOME_FIELDS, (i + 1) * FILE_OUTCOME_FIELDS);
      const path = b.paths[i]!;
      result.restoredBytes += f[12]!;
      bytes += f[2]!;
      if (f[13] === 1) result.stoppedBy = 'budget';
      if (f[0] === -2) result.skipped.push({ path, reason: 'changed' });
      else if (f[0]! > 0) {
        const error = systemError({ errno: f[0]!, syscall: syscalls[i] ?? 'open' });
        error.message += ` '${path}'`;
        result.skipped.push({ path, reason: f[0] === 2 ? 'missing' : 'failed', error });
      } else if (f[13] !== 1) result.files++;
    }
    if (onProgress && !signal?.aborted && performance.now() - last >= interval) {
      last = performance.now();
      onProgress(progress());
    }
  }
  onProgress?.(progress());
  if (meter) meter.fromDisk = result.restoredBytes; // the same figure, also where the binding is not traced (the fallback)
  return result;
}

/** The specs (see Binding.files) of a batch of a hot set's paths, in this machine's pages. */
function specsOf(batch: string[], byPath: Map<string, HotFile>, scale: number): Float64Array {
  let n = 0;
  for (const p of batch) n += 7 + byPath.get(p)!.ranges.length;
  const out = new Float64Array(n);
  let at = 0;
  for (const p of batch) {
    const f = byPath.get(p)!;
    const ino = BigInt(f.ino);
    const mtime = BigInt(f.mtimeNs);
    out.set([f.dev, Number(ino >> 32n), Number(ino & 0xffffffffn), f.size, Number(mtime / 1_000_000_000n), Number(mtime % 1_000_000_000n), f.ranges.length / 2], at);
    at += 7;
    for (let k = 0; k < f.ranges.length; k += 2) {
      // Pages of another size: the range that covers them here.
      const first = Math.floor(f.ranges[k]! * scale);
      out[at++] = first;
      out[at++] = Math.ceil((f.ranges[k]! + f.ranges[k + 1]!) * scale) - first;
    }
  }
  return out;
}

/** Options of {@link keepSnapshot}. */
export interface KeepSnapshotOptions extends SnapshotOptions {
  /** How often the snapshot is rewritten. Default 300000 (5 minutes, autoprewarm's default). */
  intervalMs?: number;
  /** Called when a snapshot cannot be taken or written (the next interval tries again). Default: a process warning. */
  onError?: (err: Error) => void;
}

/** The keeper {@link keepSnapshot} returns. */
export interface SnapshotKeeper {
  /** Stops the interval and writes a last snapshot; resolves once it is on disk. */
  stop(): Promise<void>;
  /** Snapshots written so far. */
  readonly written: number;
}

/**
 * autoprewarm's mode: snapshots `paths` into `file` now and every
 * `intervalMs`, each written atomically (saveHotSet: a reader sees the old
 * file or the new one, never half of one). The timer does not keep the
 * process alive; call stop() at shutdown for a last snapshot.
 */
export function keepSnapshot(paths: string | string[], file: string, options?: KeepSnapshotOptions): SnapshotKeeper {
  if (typeof file !== 'string') throw invalidArgType('file', 'of type string', file);
  const o = toOptions<KeepSnapshotOptions>(options);
  const interval = o.intervalMs === undefined ? 300_000 : toIntInRange(o.intervalMs, 'options.intervalMs', 1, 2 ** 31 - 1);
  const onError = o.onError ?? ((err: Error) => process.emitWarning(`pagewarm: snapshot of ${file} failed: ${err.message}`, { code: 'PAGEWARM_SNAPSHOT' }));
  if (typeof onError !== 'function') throw invalidArgType('options.onError', 'of type function', onError);
  const snapOptions: SnapshotOptions = { followSymlinks: o.followSymlinks, crossMounts: o.crossMounts };
  let written = 0;
  let running: Promise<void> = Promise.resolve();
  const once = (): Promise<void> => {
    // One at a time: a slow snapshot delays the next instead of overlapping it.
    running = running.then(async () => {
      try {
        await saveHotSet(file, await snapshot(paths, snapOptions));
        written++;
      } catch (err) {
        onError(err as Error);
      }
    });
    return running;
  };
  void once();
  const timer = setInterval(() => void once(), interval);
  timer.unref();
  let stopped: Promise<void> | undefined;
  return {
    stop() {
      clearInterval(timer);
      return (stopped ??= once());
    },
    get written() {
      return written;
    },
  };
}
