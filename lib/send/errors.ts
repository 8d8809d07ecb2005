/**
 * The errors sendFile rejects with: each carries `bytesSent`, the bytes of
 * the file that reached the socket before it failed.
 */
import type { CodedError } from '../core/errors';

/** What sendFile rejects with: an Error (often a SystemError or AbortError) with the bytes sent. */
export type SendFileError = Error & { code?: string; bytesSent: number };

/** A coded socket error (`ERR_STREAM_DESTROYED`, ...) with `bytesSent` and an optional cause. */
export function socketError(code: string, message: string, bytesSent: number, cause?: unknown): SendFileError & CodedError {
  const err = new Error(message, cause === undefined || cause === null ? undefined : { cause }) as SendFileError & CodedError;
  err.code = code;
  err.bytesSent = bytesSent;
  return err;
}

/** `err` with `bytesSent` counted from `before` (plus what it already says). */
export function withBytesSent(err: unknown, before: number): SendFileError {
  const e = (err instanceof Error ? err : new Error(String(err))) as SendFileError;
  e.bytesSent = before + (typeof e.bytesSent === 'number' ? e.bytesSent : 0);
  return e;
}
