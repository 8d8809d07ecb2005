/**
 * Errors shaped like Node's own: system errors carry `code`, a negative
 * `errno` and `syscall` ("EBADF: bad file descriptor, sendfile"); argument
 * errors are TypeError / RangeError with `ERR_INVALID_ARG_TYPE` /
 * `ERR_OUT_OF_RANGE`; aborted operations reject with an `AbortError`.
 */
import { getSystemErrorMap, inspect } from 'node:util';

/** A failure reported by the native layer: a positive errno and the syscall. */
export interface NativeFailure {
  errno: number;
  syscall: string;
  aborted?: boolean;
  bytesSent?: number;
}

/** A system error as Node's fs module makes them. */
export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  /** For sends: bytes that reached the destination before the failure. */
  bytesSent?: number;
}

const systemErrors = getSystemErrorMap();

/** Builds `EBADF: bad file descriptor, sendfile` from a native failure. */
export function systemError(failure: NativeFailure): SystemError {
  const errno = -Math.abs(failure.errno);
  const [code, description] = systemErrors.get(errno) ?? [`Unknown system error ${errno}`, 'unknown error'];
  const err = new Error(`${code}: ${description}, ${failure.syscall}`) as SystemError;
  err.errno = errno;
  err.code = code;
  err.syscall = failure.syscall;
  if (failure.bytesSent !== undefined) err.bytesSent = failure.bytesSent;
  return err;
}

/** True for the `{ errno, syscall }` objects the native layer returns. */
export function isNativeFailure(value: unknown): value is NativeFailure {
  return typeof value === 'object' && value !== null && typeof (value as NativeFailure).errno === 'number' &&
    typeof (value as NativeFailure).syscall === 'string';
}

/** Node's AbortError: `name` 'AbortError', `code` 'ABORT_ERR', `cause` the signal's reason. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AbortError';
  }
}

/** An error with a Node-style `code`, named like its class as Node does. */
export interface CodedError extends Error {
  code: string;
}

function describe(value: unknown): string {
  if (value === null) return 'Received null';
  if (value === undefined) return 'Received undefined';
  if (typeof value === 'function') return `Received function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') return `Received an instance of ${value.constructor?.name ?? 'Object'}`;
  let shown = inspect(value, { colors: false });
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return `Received type ${typeof value} (${shown})`;
}

/** TypeError `ERR_INVALID_ARG_TYPE`, worded as Node words it. */
export function invalidArgType(name: string, expected: string, actual: unknown): CodedError {
  const err = new TypeError(`The "${name}" argument must be ${expected}. ${describe(actual)}`) as TypeError & CodedError;
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

/** RangeError `ERR_OUT_OF_RANGE`, worded as Node words it. */
export function outOfRange(name: string, range: string, actual: unknown): CodedError {
  const shown = typeof actual === 'string' ? `'${actual}'` : inspect(actual);
  const err = new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shown}`) as RangeError &
    CodedError;
  err.code = 'ERR_OUT_OF_RANGE';
  return err;
}

/** TypeError `ERR_INVALID_ARG_VALUE`, for a value of the right type that is not allowed. */
export function invalidArgValue(name: string, actual: unknown, reason: string): CodedError {
  const err = new TypeError(`The argument '${name}' ${reason}. Received ${inspect(actual)}`) as TypeError & CodedError;
  err.code = 'ERR_INVALID_ARG_VALUE';
  return err;
}
