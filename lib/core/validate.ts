/**
 * Argument checks shared by every public function, with Node's error codes.
 */
import type { FileHandle } from 'node:fs/promises';
import { invalidArgType, outOfRange, AbortError } from './errors';

/** A file descriptor number or a `fs.promises` FileHandle. */
export type FileLike = number | FileHandle;

const INT32_MAX = 2 ** 31 - 1;

function isFileHandle(value: unknown): value is FileHandle {
  return typeof value === 'object' && value !== null && typeof (value as FileHandle).fd === 'number' &&
    typeof (value as FileHandle).close === 'function';
}

/** Returns the descriptor number of fd (an int32 >= 0, or an open FileHandle's fd). */
export function toFd(fd: unknown, name = 'fd'): number {
  if (isFileHandle(fd)) {
    // -1 once closed: the syscall then says EBADF. Anything else that is not
    // a descriptor number (from a FileHandle look-alike) would be truncated
    // to some other descriptor by the native layer: refuse it here.
    const n = fd.fd;
    if (!Number.isInteger(n)) throw outOfRange(`${name}.fd`, 'an integer', n);
    if (n < -1 || n > INT32_MAX) throw outOfRange(`${name}.fd`, `>= -1 && <= ${INT32_MAX}`, n);
    return n;
  }
  if (typeof fd !== 'number') throw invalidArgType(name, 'of type number or an instance of FileHandle', fd);
  if (!Number.isInteger(fd)) throw outOfRange(name, 'an integer', fd);
  if (fd < 0 || fd > INT32_MAX) throw outOfRange(name, `>= 0 && <= ${INT32_MAX}`, fd);
  return fd;
}

/** A safe integer >= 0 (offsets, lengths); `fallback` when undefined. */
export function toPosition(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < 0 || value > Number.MAX_SAFE_INTEGER) throw outOfRange(name, `>= 0 && <= ${Number.MAX_SAFE_INTEGER}`, value);
  return value;
}

/** An integer within [min, max]. */
export function toIntInRange(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value);
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value);
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value);
  return value;
}

/** The options object itself: undefined, or an object. */
export function toOptions<T extends object>(value: unknown, name = 'options'): Partial<T> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object') throw invalidArgType(name, 'of type object', value);
  return value as Partial<T>;
}

/**
 * options.signal: undefined or an AbortSignal. Checked by shape, as Node's
 * own validateAbortSignal does (an object with `aborted`), not with
 * instanceof: a signal from another realm (a vm context, another copy of
 * the AbortController polyfill) or any EventTarget with `aborted` and
 * `reason` is accepted. Its listener methods are required too, since they
 * are called: an object without them is refused here rather than failing
 * with a TypeError mid-operation.
 */
export function toSignal(value: unknown, name = 'options.signal'): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!isAbortSignalLike(value)) throw invalidArgType(name, 'an instance of AbortSignal', value);
  return value;
}

function isAbortSignalLike(value: unknown): value is AbortSignal {
  if (typeof value !== 'object' || value === null || !('aborted' in value)) return false;
  const v = value as Partial<AbortSignal>;
  return typeof v.addEventListener === 'function' && typeof v.removeEventListener === 'function';
}

/** A boolean option, with its default. */
export function toBoolean(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value);
  return value;
}

/** Throws the AbortError Node throws for an already-aborted signal. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });
}
