/**
 * warmFile: one file by its path, warmed with prepareForRead; with a
 * `budget`, on the batch path, which reserves the bytes it will read.
 */
import { invalidArgType } from '../core/errors';
import { openForReading } from '../core/open';
import { toProgressPlan } from '../core/progress';
import { toOptions, toPosition, toSignal, throwIfAborted } from '../core/validate';
import { prepareForRead, type PrepareOptions } from '../core/warm';
import { Budget, toBudgetSpec, type BudgetSpec } from './budget';
import { batches, toPlan } from './each';
import { capabilities } from '../core/config';

/** Options for {@link warmFile}. */
export interface WarmFileOptions extends PrepareOptions {
  /** Byte offset to start at. Default 0. */
  offset?: number;
  /** Bytes to warm. Default: to the end of the file. */
  length?: number;
  /**
   * The most to read from the disk, as warmFiles' `budget`: bytes, or a
   * percentage of the memory this process can fill (see docs/api.md,
   * "Budgets"). A range whose bytes not in the page cache exceed it is not
   * read at all: the call then resolves with the bytes of it already
   * resident. Progress is then reported once, at the end.
   */
  budget?: number | string;
}

/**
 * Opens `path` read-only, warms the range with {@link prepareForRead}, and
 * closes it again. The open runs on pagewarm's threads (the portable
 * fallback: on the libuv pool), and the descriptor belongs to the calling
 * thread's environment: a worker terminated while the open or the warm-up is
 * in flight leaks no descriptor. Opened with O_NONBLOCK, so a FIFO cannot
 * hang the call (it is refused with `ESPIPE`).
 *
 * @returns The bytes of the range now resident (with a budget it stopped:
 *   those resident before, fewer than the range).
 * @throws As `fs.promises.open` (`ENOENT: no such file or directory, open '/x'`,
 *   `EACCES`, ..., with `path`) and {@link prepareForRead}.
 */
export async function warmFile(path: string, options?: WarmFileOptions): Promise<number> {
  if (typeof path !== 'string') throw invalidArgType('path', 'of type string', path);
  const opts = toOptions<WarmFileOptions>(options);
  const start = toPosition(opts.offset, 'options.offset', 0);
  const count = opts.length === undefined ? undefined : toPosition(opts.length, 'options.length', 0);
  const signal = toSignal(opts.signal);
  const progress = toProgressPlan(opts);
  const spec = toBudgetSpec(opts.budget);
  throwIfAborted(signal);
  if (spec) {
    const bytes = await warmWithin(path, start, count, spec, signal);
    progress?.onProgress({ bytes: bytes.warmed, total: bytes.range, fromDisk: bytes.fromDisk });
    return bytes.resident;
  }
  const file = await openForReading(path);
  try {
    return await prepareForRead(file.fd, start, count, { signal, onProgress: opts.onProgress, progressIntervalMs: opts.progressIntervalMs });
  } finally {
    file.close();
  }
}

/** warmFile with a budget: the batch path, one file, which reads the range only if its missing bytes fit. */
async function warmWithin(path: string, start: number, count: number | undefined, spec: BudgetSpec, signal: AbortSignal | undefined):
  Promise<{ resident: number; warmed: number; range: number; fromDisk: number }> {
  const plan = toPlan('warm', [path], { offset: start, length: count, signal, followSymlinks: true, blockDevices: true });
  const budget = new Budget(spec);
  plan.budget = budget.handle;
  plan.beforeBatch = () => budget.check();
  for await (const [r] of batches(plan, [path])) {
    if (r!.error) throw r!.error;
    if (!r!.stopped) return { resident: r!.bytes, warmed: r!.bytes, range: r!.bytes, fromDisk: r!.readBytes };
    // Stopped by the budget: nothing was read; what was resident before stays.
    const before = r!.residentPagesBefore ?? 0;
    const resident = before >= r!.pages ? r!.bytes : Math.min(r!.bytes, before * capabilities().pageSize);
    return { resident, warmed: 0, range: r!.bytes, fromDisk: 0 };
  }
  return { resident: 0, warmed: 0, range: 0, fromDisk: 0 };
}
