/**
 * Warming the page cache: make a file range resident before a zero-copy send
 * or a read on a latency-sensitive thread, so that later access never waits
 * for the disk (the LINE/Kafka fix, KAFKA-7504).
 */
import { binding, nextId } from './native';
import { settle, unwrap, type Meter } from './settle';
import { toProgressPlan, watchJob, type ProgressOptions, type ProgressPlan } from './progress';
import { activeChannel, traceAsync, traceSync } from './trace';
import { toFd, toOptions, toPosition, toSignal, throwIfAborted, type FileLike } from './validate';

/** Options for {@link prepareForRead}. */
export interface PrepareOptions extends ProgressOptions {
  /** Aborts the warm-up; it stops within about one chunk, and what it already warmed stays warm. */
  signal?: AbortSignal;
}

/**
 * Brings `[offset, offset + length)` of a file into the page cache, on
 * pagewarm's own native threads (never the libuv threadpool), without copying
 * a byte to user space: sendfile(2) to /dev/null, as Kafka's prepareForRead.
 *
 * Large ranges are warmed one chunk at a time (8 MiB by default, see
 * {@link configure}), round-robin with other warm-ups, so small requests are
 * never stuck behind large ones. A range that is already fully resident and
 * at most 512 KiB long resolves on the JS thread, without a thread hop
 * (pages whose read is still in flight do not count as resident for this).
 *
 * The descriptor is duplicated for the operation, so closing it while the
 * warm-up runs is safe. O_DIRECT descriptors are warmed through a buffered
 * reopen of the same file; filesystems that cannot splice are warmed by
 * reading into a reused buffer.
 *
 * @param fd A descriptor opened for reading (a regular file or a block device), or a FileHandle.
 * @param offset Byte offset to start at. Default 0.
 * @param length Bytes to warm. Default: to the end of the file.
 * @returns The bytes of the range now resident: short at end of file, 0 past it.
 * @throws (as a rejection) TypeError `ERR_INVALID_ARG_TYPE` / RangeError `ERR_OUT_OF_RANGE`
 *   for bad arguments; a system error such as `EBADF: bad file descriptor, sendfile`,
 *   `EISDIR` for a directory, `ESPIPE` for a pipe or socket, `EINVAL` for a character
 *   device; an `AbortError` when `options.signal` aborts.
 */
export async function prepareForRead(
  fd: FileLike,
  offset?: number,
  length?: number,
  options?: PrepareOptions,
): Promise<number> {
  const handle = toFd(fd);
  const start = toPosition(offset, 'offset', 0);
  const count = toPosition(length, 'length', -1);
  const opts = toOptions<PrepareOptions>(options);
  const signal = toSignal(opts.signal);
  const progress = toProgressPlan(opts);
  throwIfAborted(signal);
  const ch = activeChannel('prepareForRead');
  if (ch === undefined && progress === undefined) {
    const id = nextId();
    return settle(binding.warm(handle, start, count, id), id, signal);
  }
  const context = { fd: handle, offset: start, length: count < 0 ? undefined : count };
  if (ch === undefined) return warmRange(handle, start, count, signal, undefined, progress);
  return traceAsync(ch, context, (meter) => warmRange(handle, start, count, signal, meter, progress));
}

/**
 * prepareForRead's warm-up with figures: what it read from the disk and its
 * wait for a thread go to `meter`; progress is reported while it runs and
 * once at the end. Also sendFile's warming ahead.
 * @internal
 */
export async function warmRange(fd: number, start: number, count: number, signal: AbortSignal | undefined,
  meter: Meter | undefined, progress: ProgressPlan | undefined): Promise<number> {
  const id = nextId();
  const own: Meter = { fromDisk: 0, queuedMs: 0 };
  const started = binding.warm(fd, start, count, id, true);
  const stop = progress && started instanceof Promise ? watchJob(id, progress, signal) : undefined;
  let bytes: number;
  try {
    bytes = await settle(started, id, signal, own);
  } finally {
    stop?.();
    if (meter) {
      meter.fromDisk += own.fromDisk;
      meter.queuedMs += own.queuedMs;
    }
  }
  progress?.onProgress({ bytes, total: bytes, fromDisk: own.fromDisk });
  return bytes;
}

/**
 * The blocking form of {@link prepareForRead}: warms the range on the
 * calling thread and returns when it is resident. Meant for worker threads;
 * on the main thread it blocks the event loop for as long as the disk takes.
 *
 * @returns The bytes of the range now resident.
 * @throws TypeError / RangeError for bad arguments, or a system error.
 */
export function prepareForReadSync(fd: FileLike, offset?: number, length?: number): number {
  const handle = toFd(fd);
  const start = toPosition(offset, 'offset', 0);
  const count = toPosition(length, 'length', -1);
  const ch = activeChannel('prepareForRead');
  if (ch === undefined) return unwrap(binding.warmSync(handle, start, count));
  const context = { fd: handle, offset: start, length: count < 0 ? undefined : count };
  return traceSync(ch, context, (meter) => unwrap(binding.warmSync(handle, start, count, true), meter));
}
