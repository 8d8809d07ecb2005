/**
 * Turns what an async native call returned into a promise with Node-style
 * errors, and wires an AbortSignal to the native job.
 */
import { AbortError, isNativeFailure, systemError, type NativeFailure } from './errors';
import { binding } from './native';
import { whenAborted } from './abort';
import type { Traced } from './binding';

/**
 * What a traced call found, summed over its jobs: the bytes that were not in
 * the page cache when pagewarm read them, and the time its jobs waited for a
 * pool thread (see trace.ts).
 */
export interface Meter {
  fromDisk: number;
  queuedMs: number;
}

/**
 * A traced job's resolution (`{ value, fromDisk, queuedMs }`) with its
 * figures added to `meter`; any other value as it is (a call settled on the
 * JS thread, or the fallback's, which are never wrapped).
 */
export function untrace<T>(value: T | Traced<T>, meter: Meter | undefined): T {
  if (meter === undefined || !isTraced(value)) return value as T;
  meter.fromDisk += value.fromDisk;
  meter.queuedMs += value.queuedMs;
  return value.value;
}

/** A traced job's rejection reason: its figures added to `meter` (when there is one). */
export function meterFailure(reason: NativeFailure, meter: Meter | undefined): void {
  if (meter === undefined) return;
  const traced = reason as NativeFailure & Partial<Meter>;
  meter.fromDisk += traced.fromDisk ?? 0;
  meter.queuedMs += traced.queuedMs ?? 0;
}

function isTraced<T>(value: T | Traced<T>): value is Traced<T> {
  return typeof value === 'object' && value !== null && 'queuedMs' in value && 'value' in value && 'fromDisk' in value;
}

/**
 * Awaits a native call's result. `started` is its return value: a value
 * settled on the JS thread, a failure found before work began, or a promise.
 * An abort cancels the job; the job stops at its next slice (within about one
 * chunk) and the promise then rejects with an AbortError. With a `meter`
 * (the call was made traced), the job's figures are added to it, on failure
 * too.
 */
export async function settle<T>(started: T | Traced<T> | Promise<T | Traced<T>> | NativeFailure, id: number, signal?: AbortSignal,
  meter?: Meter): Promise<T> {
  if (isNativeFailure(started)) throw systemError(started);
  if (!(started instanceof Promise)) return untrace(started, meter);
  // One listener per signal however many calls share it (see abort.ts).
  const stopWaiting = signal ? whenAborted(signal, () => binding.cancel(id)) : undefined;
  try {
    return untrace(await started, meter);
  } catch (reason) {
    if (isNativeFailure(reason)) {
      meterFailure(reason, meter);
      if (reason.aborted) throw new AbortError(undefined, { cause: signal?.reason });
      throw systemError(reason);
    }
    throw reason;
  } finally {
    stopWaiting?.();
  }
}

/** Returns a sync native call's value, or throws its failure as a system error. */
export function unwrap<T>(result: T | Traced<T> | NativeFailure, meter?: Meter): T {
  if (isNativeFailure(result)) throw systemError(result);
  return untrace(result, meter);
}
