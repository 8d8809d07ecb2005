/**
 * Turns what an async native call returned into a promise with Node-style
 * errors, and wires an AbortSignal to the native job.
 */
import { AbortError, isNativeFailure, systemError, type NativeFailure } from './errors';
import { binding } from './native';
import { whenAborted } from './abort';

/**
 * Awaits a native call's result. `started` is its return value: a value
 * settled on the JS thread, a failure found before work began, or a promise.
 * An abort cancels the job; the job stops at its next slice (within about one
 * chunk) and the promise then rejects with an AbortError.
 */
export async function settle<T>(started: T | Promise<T> | NativeFailure, id: number, signal?: AbortSignal): Promise<T> {
  if (isNativeFailure(started)) throw systemError(started);
  if (!(started instanceof Promise)) return started;
  // One listener per signal however many calls share it (see abort.ts).
  const stopWaiting = signal ? whenAborted(signal, () => binding.cancel(id)) : undefined;
  try {
    return await started;
  } catch (reason) {
    if (isNativeFailure(reason)) {
      if (reason.aborted) throw new AbortError(undefined, { cause: signal?.reason });
      throw systemError(reason);
    }
    throw reason;
  } finally {
    stopWaiting?.();
  }
}

/** Returns a sync native call's value, or throws its failure as a system error. */
export function unwrap<T>(result: T | NativeFailure): T {
  if (isNativeFailure(result)) throw systemError(result);
  return result;
}
