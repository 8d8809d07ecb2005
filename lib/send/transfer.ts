/**
 * Sending file bytes to a descriptor with sendfile(2): the bytes go from the
 * page cache to the destination inside the kernel, never through a
 * JavaScript Buffer. For sockets owned by Node, use {@link sendFile} in
 * ./socket, which keeps the socket's own writes in order around the send.
 */
import { binding, nextId } from '../core/native';
import { whenAborted } from '../core/abort';
import { AbortError, invalidArgType, isNativeFailure, systemError, type SystemError } from '../core/errors';
import { toFd, toOptions, toPosition, toSignal, type FileLike } from '../core/validate';
import { meterFailure, untrace, type Meter } from '../core/settle';
import { activeChannel, traceAsync, traceSync } from '../core/trace';

/** Options for {@link transferTo}. */
export interface TransferOptions {
  /**
   * Aborts the send: it stops within about one chunk (see `configure`), or at
   * once while it waits for a full socket, and rejects with an `AbortError`
   * whose `bytesSent` says how much had already reached the destination.
   */
  signal?: AbortSignal;
}

/**
 * A rejection of {@link transferTo}: a system error (`EPIPE`, `ECONNRESET`,
 * `EBADF`, ...) or an `AbortError`, both with `bytesSent`: the bytes that
 * reached the destination before the failure (0 when it failed before any
 * work began).
 */
export type TransferError = (SystemError | AbortError) & { bytesSent: number };

/**
 * Copies `[offset, offset + length)` of a file to `outFd` with sendfile(2),
 * on pagewarm's own native threads (never the libuv threadpool and never the
 * JS thread). Partial transfers are continued, EINTR is retried, the
 * kernel's per-call cap (0x7ffff000 bytes) is respected, and the send stops
 * at end of file: the result is then short.
 *
 * A non-blocking `outFd` (every socket Node owns is one) that is full does
 * not hold a thread: the job waits in pagewarm's single epoll thread, on its
 * own duplicate of the descriptor, until the receiver has room; a slow
 * receiver never delays the event loop or other sends. Each turn on a thread
 * moves at most one chunk, round-robin with every other job. A *blocking*
 * `outFd` holds one pagewarm thread while the receiver is slow.
 *
 * Both descriptors are duplicated for the operation, so closing them while
 * the send runs is safe. SIGPIPE never kills the process: a receiver that
 * went away is reported as `EPIPE` or `ECONNRESET`.
 *
 * This writes straight to the descriptor: when `outFd` belongs to a
 * `net.Socket`, bytes the socket has queued may interleave with the file.
 * Use `sendFile(socket, ...)` for sockets.
 *
 * @param outFd The destination: a socket, pipe or file descriptor open for writing.
 * @param inFd The source, open for reading: a regular file or block device, or a FileHandle.
 * @param offset Byte offset in the source to start at.
 * @param length Bytes to send.
 * @returns The bytes sent: `length`, or fewer when end of file came first (0 past it).
 * @throws (as a rejection) TypeError `ERR_INVALID_ARG_TYPE` / RangeError `ERR_OUT_OF_RANGE`
 *   for bad arguments; a {@link TransferError}: a system error such as
 *   `EPIPE: broken pipe, sendfile` (`EBADF` for a closed or wrongly opened descriptor,
 *   `EISDIR`, `ESPIPE` for a pipe or socket as the source, `EINVAL` for a character
 *   device), or an `AbortError` when `options.signal` aborts.
 */
export async function transferTo(
  outFd: number,
  inFd: FileLike,
  offset: number,
  length: number,
  options?: TransferOptions,
): Promise<number> {
  const out = toOutFd(outFd);
  const input = toFd(inFd, 'inFd');
  const start = toRequiredPosition(offset, 'offset');
  const count = toRequiredPosition(length, 'length');
  const signal = toSignal(toOptions<TransferOptions>(options).signal);
  if (signal?.aborted) throw abortError(signal, 0);
  const ch = activeChannel('transferTo');
  if (ch === undefined) return sendRange(out, input, start, count, signal);
  return traceAsync(ch, { outFd: out, fd: input, offset: start, length: count }, (meter) => sendRange(out, input, start, count, signal, meter));
}

/**
 * The blocking form of {@link transferTo}, on the calling thread: meant for
 * worker threads and blocking descriptors. A non-blocking `outFd` that is
 * full is waited out with poll(2) on the calling thread, so on the main
 * thread a slow receiver blocks the event loop for as long as it is slow.
 * SIGPIPE is blocked for the call: a receiver that went away is reported as
 * `EPIPE`, even where SIGPIPE's disposition is the default.
 *
 * @returns The bytes sent (short at end of file).
 * @throws TypeError / RangeError for bad arguments, or a system error with
 *   `bytesSent` (see {@link transferTo}).
 */
export function transferToSync(outFd: number, inFd: FileLike, offset: number, length: number): number {
  const out = toOutFd(outFd);
  const input = toFd(inFd, 'inFd');
  const start = toRequiredPosition(offset, 'offset');
  const count = toRequiredPosition(length, 'length');
  const ch = activeChannel('transferTo');
  if (ch === undefined) return sendSync(out, input, start, count, undefined);
  return traceSync(ch, { outFd: out, fd: input, offset: start, length: count }, (meter) => sendSync(out, input, start, count, meter));
}

function sendSync(out: number, input: number, start: number, count: number, meter: Meter | undefined): number {
  const result = binding.sendSync(out, input, start, count, meter !== undefined);
  if (isNativeFailure(result)) throw sendError(result);
  return untrace(result, meter);
}

// ---------------------------------------------------------------------------
// Internal: shared with ./socket.

/**
 * Sends a range with the native binding; `length` -1 means to the end of the
 * file. Arguments are already validated. Rejects with a {@link TransferError}.
 */
export async function sendRange(
  outFd: number,
  inFd: number,
  offset: number,
  length: number,
  signal?: AbortSignal,
  meter?: Meter,
): Promise<number> {
  // Before the job, not only after: a job that completes on the JS thread
  // returns its byte count at once, and a cancel after that comes too late.
  if (signal?.aborted) throw abortError(signal, 0);
  const id = nextId();
  const started = binding.send(outFd, inFd, offset, length, id, meter !== undefined);
  if (isNativeFailure(started)) throw sendError(started);
  if (!(started instanceof Promise)) return started;
  const stopWaiting = signal ? whenAborted(signal, () => binding.cancel(id)) : undefined;
  try {
    return untrace(await started, meter);
  } catch (reason) {
    if (!isNativeFailure(reason)) throw reason;
    meterFailure(reason, meter);
    if (reason.aborted) throw abortError(signal, reason.bytesSent ?? 0);
    throw sendError(reason);
  } finally {
    stopWaiting?.();
  }
}

/** Node's AbortError (cause: the signal's reason) with `bytesSent`. @internal */
export function abortError(signal: AbortSignal | undefined, bytesSent: number): AbortError & { bytesSent: number } {
  const err = new AbortError(undefined, { cause: signal?.reason }) as AbortError & { bytesSent: number };
  err.bytesSent = bytesSent;
  return err;
}

function sendError(failure: Parameters<typeof systemError>[0]): TransferError {
  const err = systemError(failure) as TransferError;
  err.bytesSent = failure.bytesSent ?? 0;
  return err;
}

/** outFd: a descriptor number (an int32 >= 0); a FileHandle is not a destination. */
function toOutFd(value: unknown): number {
  if (typeof value !== 'number') throw invalidArgType('outFd', 'of type number', value);
  return toFd(value, 'outFd');
}

/** A required offset or length: a safe integer >= 0. */
function toRequiredPosition(value: unknown, name: string): number {
  if (value === undefined) throw invalidArgType(name, 'of type number', value);
  return toPosition(value, name, 0);
}
