/**
 * `onProgress` for single-range calls (prepareForRead, warmFile, sendFile):
 * the option's validation, and a watcher that reads a native job's progress
 * while it runs.
 */
import { binding } from './native';
import { invalidArgType } from './errors';

/** What `onProgress` is told. */
export interface Progress {
  /** Bytes done so far. */
  bytes: number;
  /** Bytes the call will do: the range clamped to the file (-1 while unknown). */
  total: number;
  /** Of `bytes`, those that were not in the page cache and came from the disk. */
  fromDisk: number;
}

/** The options every call with progress takes. */
export interface ProgressOptions {
  /**
   * Called as the work advances (chunk by chunk), at most every
   * `progressIntervalMs`, and once at the end with the final figures
   * (unless the call fails). Exceptions it throws are not caught.
   */
  onProgress?: (progress: Progress) => void;
  /** Default 100; the shortest honoured is 10 (how often a running job is looked at). */
  progressIntervalMs?: number;
}

/** The validated progress options: undefined when there is no onProgress. */
export interface ProgressPlan {
  onProgress: (progress: Progress) => void;
  intervalMs: number;
}

/** Validates onProgress and progressIntervalMs of `options`. */
export function toProgressPlan(options: ProgressOptions): ProgressPlan | undefined {
  const { onProgress, progressIntervalMs } = options;
  if (progressIntervalMs !== undefined && (typeof progressIntervalMs !== 'number' || !(progressIntervalMs >= 0))) {
    throw invalidArgType('options.progressIntervalMs', 'a number >= 0', progressIntervalMs);
  }
  if (onProgress === undefined) return undefined;
  if (typeof onProgress !== 'function') throw invalidArgType('options.onProgress', 'of type function', onProgress);
  return { onProgress, intervalMs: Math.max(10, progressIntervalMs ?? 100) };
}

/**
 * Reports native job `id`'s progress every plan.intervalMs while it runs
 * (when it has advanced), and never once `signal` has aborted. Returns the
 * function that stops watching.
 */
export function watchJob(id: number, plan: ProgressPlan, signal: AbortSignal | undefined): () => void {
  let last = -1;
  const timer = setInterval(() => {
    if (signal?.aborted) return;
    const p = binding.progress(id);
    if (p === null || p[0] === last) return;
    last = p[0];
    plan.onProgress({ bytes: p[0], total: p[1], fromDisk: p[2] });
  }, plan.intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
