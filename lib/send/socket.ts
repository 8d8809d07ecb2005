/**
 * Sending a file to a `net.Socket` zero-copy, in order with the socket's own
 * writes.
 *
 * How the ordering works: sendFile writes a zero-length marker buffer
 * through the socket's Writable, and holds the socket's `_write`/`_writev`
 * for as long as any of its markers is pending. Writable hands chunks to
 * `_write` one at a time and only after the previous write's callback, which
 * net.Socket calls once the bytes are in the kernel; so when the marker
 * arrives, everything written before it is in the socket's send queue. The
 * file is then sent (sendfile(2) on pagewarm's threads, or copied), and only
 * then is the marker's write completed: bytes written meanwhile wait in the
 * Writable's buffer, and `end()` waits too (Writable defers `_final`, that
 * is the FIN, until every write before it completed). The original methods
 * come back when the last pending marker is done, also on error and abort.
 */
import * as net from 'node:net';
import { TLSSocket } from 'node:tls';
import { binding } from '../core/native';
import { capabilities } from '../core/config';
import { abortError, sendRange } from './transfer';
import { whenAborted } from '../core/abort';
import { AbortError, invalidArgType } from '../core/errors';
import { toBoolean, toOptions, toPosition, toSignal, type FileLike } from '../core/validate';
import { sendChunks } from './chunks';
import { copyRange, PIECE_QUEUED } from './copy';
import { socketError, type SendFileError } from './errors';
import { hold, holdSupported, internal, socketFd, unhold, type Callback, type HeldSend } from './hold';
import { sendPlain } from './plain';
import { openSource, pinSource, toSource, type Input, type Source } from './source';
import type { Meter } from '../core/settle';
import { toProgressPlan, type ProgressOptions, type ProgressPlan } from '../core/progress';
import { activeChannel, traceAsync } from '../core/trace';

export type { SendFileError } from './errors';
/** @internal */
export { openPath, openSource, pinSource, toSource, type Input, type Source } from './source';

/** Options for {@link sendFile}. */
export interface SendFileOptions extends ProgressOptions {
  /** Byte offset in the file to start at. Default 0. */
  offset?: number;
  /** Bytes to send. Default: to the end of the file. */
  length?: number;
  /**
   * Warm each chunk on pagewarm's threads before it is sent, pipelined: chunk
   * N+1 warms while chunk N goes out (chunks as `configure({ chunkSize })`,
   * 8 MiB by default). Default true. Without it a cold chunk is read from
   * disk by the send itself, still off the JS thread. A zero-copy send of
   * at most one chunk has nothing to pipeline and is always sent that way:
   * one job on pagewarm's threads reads and sends it.
   */
  warm?: boolean;
  /**
   * After the bytes are sent, advise the kernel to drop the range from the
   * page cache (posix_fadvise DONTNEED, chunk by chunk behind the send), so a
   * one-shot reader does not evict what everyone else reads. Pages still
   * queued in the socket's send buffer when the send completes are in use by
   * the network stack and cannot be dropped: up to about one send buffer
   * (a few MiB) of the range stays cached. Default false.
   */
  dropBehind?: boolean;
  /** Aborts the send, see {@link sendFile} for what state the socket is left in. */
  signal?: AbortSignal;
}

/** What {@link sendFile} resolves with. */
export interface SendFileResult {
  /** Bytes of the file sent: the range's length, or fewer when end of file came first. */
  bytes: number;
  /** True when the bytes went by sendfile(2), false when they were copied through a Buffer. */
  zeroCopy: boolean;
}

/**
 * A rejection of {@link sendFile} once its arguments were accepted: it
 * always carries `bytesSent`, the file bytes that left before it failed.
 */

/**
 * Sends `[offset, offset + length)` of a file to a connected socket, in
 * order with the socket's other writes: bytes written before the call arrive
 * first, then the file's bytes, then bytes written (and `end()` called)
 * while the send runs; normal writing resumes afterwards.
 *
 * On a plain TCP or Unix domain socket (on Linux, with the native addon) the
 * file goes out by sendfile(2) on pagewarm's own threads: no byte is copied
 * through JavaScript, no read or send runs on the JS thread or the libuv
 * threadpool, and a slow receiver waits in pagewarm's epoll thread without
 * holding a thread. Elsewhere (TLS sockets, where plain sendfile would bypass
 * the encryption; sockets without a usable descriptor; the portable
 * fallback) the file is copied through Buffers with the same ordering and
 * result shape, and `zeroCopy: false`.
 *
 * The state the socket is left in:
 * - resolved: the socket is as before, with every byte written during the
 *   send flushed after the file (and `end()` honoured if it was called).
 * - rejected before the first file byte left, because `options.signal`
 *   aborted: the socket is untouched and writing resumes; the error is an
 *   `AbortError` with `bytesSent: 0`.
 * - rejected in every other case (the socket was destroyed, ended or errored
 *   before or during the send, the receiver went away, the send failed, or it
 *   was aborted after some bytes left): the socket is destroyed (without an
 *   extra 'error' event from pagewarm: the error is the rejection), since its
 *   byte stream can no longer be trusted. Writes made during the send then
 *   fail with `ERR_STREAM_DESTROYED`.
 * A socket already destroyed or ended when sendFile is called is left alone
 * and the call rejects with `ERR_STREAM_DESTROYED` / `ERR_STREAM_WRITE_AFTER_END`.
 *
 * Notes: a corked socket starts the send when it is uncorked;
 * `socket.bytesWritten` does not count zero-copy bytes; the socket's idle
 * timeout (`setTimeout`) is refreshed as chunks complete, so it still fires
 * for a receiver that stalls. A descriptor passed as `file` is duplicated
 * before sendFile returns, so closing it while the send runs cannot make the
 * send read another file; a path is opened on pagewarm's threads. Both
 * belong to the calling thread's environment: a worker terminated mid-send
 * leaks neither.
 *
 * @param socket A `net.Socket` (or `tls.TLSSocket`), connected or connecting.
 * @param file A path, a descriptor open for reading, or a FileHandle.
 * @returns `{ bytes, zeroCopy }`.
 * @throws (as a rejection) TypeError `ERR_INVALID_ARG_TYPE` / RangeError `ERR_OUT_OF_RANGE`
 *   for bad arguments; a system error for the file (`ENOENT`, `EISDIR`, `EBADF`,
 *   `ESPIPE` for a pipe or socket, ...) before the socket is touched; `ERR_STREAM_DESTROYED`,
 *   `ERR_STREAM_WRITE_AFTER_END`, `ERR_SOCKET_CLOSED`, a system error from the send
 *   (`EPIPE`, `ECONNRESET`) or an `AbortError`, each with `bytesSent`.
 */
export function sendFile(socket: net.Socket, file: FileLike | string, options?: SendFileOptions): Promise<SendFileResult> {
  try {
    if (!(socket instanceof net.Socket)) throw invalidArgType('socket', 'an instance of net.Socket', socket);
    let source = toSource(file);
    const opts = toOptions<SendFileOptions>(options);
    const offset = toPosition(opts.offset, 'options.offset', 0);
    const length = opts.length === undefined ? -1 : toPosition(opts.length, 'options.length', 0);
    const warm = toBoolean(opts.warm, 'options.warm', true);
    const dropBehind = toBoolean(opts.dropBehind, 'options.dropBehind', false);
    const signal = toSignal(opts.signal);
    if (signal?.aborted) throw abortError(signal, 0);
    checkSocket(socket);
    const progress = toProgressPlan(opts);
    const ch = activeChannel('sendFile');
    const context = ch && { ...(typeof file === 'string' ? { path: file } : { fd: typeof file === 'number' ? file : file.fd }),
      offset, length: length < 0 ? undefined : length };
    source = pinSource(source); // last: nothing below throws before begin() owns it
    // The marker must be written now, synchronously (traceAsync calls at
    // once): writes the caller makes right after this call are then queued
    // behind it.
    const pinned = source;
    const send = (meter: Meter | undefined): Promise<SendFileResult> => {
      if (!holdSupported()) return sendPlain(socket, pinned, { offset, length }, signal, progress);
      return new Promise<SendFileResult>((resolve, reject) => {
        new SocketSend(socket, pinned, { offset, length, warm, dropBehind, meter, progress }, signal, resolve, reject).begin();
      });
    };
    if (ch === undefined) return send(progress && { fromDisk: 0, queuedMs: 0 });
    return traceAsync(ch, context!, send);
  } catch (err) {
    // Past the argument checks, every rejection says how much was sent.
    if (err instanceof Error && 'syscall' in err && !('bytesSent' in err)) (err as unknown as SendFileError).bytesSent = 0;
    return Promise.reject(err);
  }
}

/**
 * sendFile for a descriptor the caller (./http) opened, validated and keeps
 * open until this settles: no reopen. The marker is written synchronously.
 * @internal
 */
export function sendOwnedFile(
  socket: net.Socket,
  fd: number,
  offset: number,
  length: number,
  signal?: AbortSignal,
  meter?: Meter,
): Promise<SendFileResult> {
  try {
    checkSocket(socket);
  } catch (err) {
    return Promise.reject(err);
  }
  if (!holdSupported()) return sendPlain(socket, { owned: fd }, { offset, length }, signal, undefined);
  return new Promise<SendFileResult>((resolve, reject) => {
    new SocketSend(socket, { owned: fd }, { offset, length, warm: true, dropBehind: false, meter, progress: undefined }, signal, resolve, reject).begin();
  });
}

// ---------------------------------------------------------------------------
// The socket.

function checkSocket(socket: net.Socket): void {
  const s = internal(socket);
  if (socket.destroyed || s.errored) {
    throw socketError('ERR_STREAM_DESTROYED', 'Cannot call sendFile after a socket was destroyed', 0, s.errored);
  }
  if (socket.writableEnded || socket.writable === false) {
    throw socketError('ERR_STREAM_WRITE_AFTER_END', 'Cannot call sendFile after a socket was ended', 0);
  }
  if (!s.connecting && s._handle === null) {
    throw socketError('ERR_SOCKET_CLOSED', 'Cannot call sendFile on a socket that is not connected', 0);
  }
}

/** Whether sends to this socket can be zero-copy (its descriptor is checked again at start). */
function zeroCopyFor(socket: net.Socket): boolean {
  if (!capabilities().zeroCopySend) return false;
  const s = internal(socket);
  if (s.encrypted || socket instanceof TLSSocket) return false; // TLS: bytes must go through the cipher
  return s.connecting || socketFd(socket) >= 0;
}

interface Range {
  offset: number;
  length: number;
  warm: boolean;
  dropBehind: boolean;
  /** Where the send's figures (bytes from the disk, waits for a thread) go, when traced or watched. */
  meter: Meter | undefined;
  progress: ProgressPlan | undefined;
}

type Opened = { ok: true; input: Input } | { ok: false; error: unknown };

/** One sendFile call on one socket: queued behind earlier writes, running, or done. */
class SocketSend implements HeldSend {
  private readonly marker = Buffer.alloc(0);
  private state: 'queued' | 'running' | 'done' = 'queued';
  private readonly controller = new AbortController();
  private opened!: Promise<Opened>;
  /** The socket closed while the send ran. */
  private closed = false;
  /** A byte may have been handed to the socket: from here on, a failure destroys it. */
  private emitting = false;
  private done: Callback | undefined;
  private zeroCopy: boolean;
  private stopWaiting: (() => void) | undefined;

  constructor(
    private readonly socket: net.Socket,
    private readonly source: Source,
    private readonly range: Range,
    private readonly signal: AbortSignal | undefined,
    private readonly resolve: (r: SendFileResult) => void,
    private readonly reject: (e: unknown) => void,
  ) {
    this.zeroCopy = zeroCopyFor(socket);
  }

  begin(): void {
    hold(this.socket).pending.set(this.marker, this);
    this.stopWaiting = this.signal ? whenAborted(this.signal, this.onAbort) : undefined;
    this.opened = openSource(this.source).then(
      (input): Opened => ({ ok: true, input }),
      (error): Opened => ({ ok: false, error }),
    );
    this.socket.write(this.marker, this.onMarkerDone); // may call start() at once
    // A file that cannot be opened fails the call at once, even while queued.
    void this.opened.then((r) => {
      if (!r.ok && this.state === 'queued') this.settle(r.error as SendFileError, 0);
    });
  }

  /** The marker reached _write: everything written before it is in the kernel. */
  start(done: Callback): void {
    if (this.state !== 'queued') {
      done(); // settled while queued: nothing to send, writing goes on
      return;
    }
    this.state = 'running';
    this.done = done;
    this.run().then(
      (bytes) => this.settle(undefined, bytes),
      (err) => this.settle(err as SendFileError, 0),
    );
  }

  private async run(): Promise<number> {
    const opened = await this.opened;
    if (!opened.ok) throw opened.error;
    if (this.controller.signal.aborted) throw new AbortError(undefined, { cause: this.controller.signal.reason });
    if (internal(this.socket).connecting) await connected(this.socket);
    const out = this.zeroCopy ? socketFd(this.socket) : -1;
    if (out < 0) this.zeroCopy = false;
    const fd = opened.input.fd;
    const signal = this.controller.signal;
    const { offset, length, dropBehind, meter, progress } = this.range;
    const emit = (pos: number, n: number): Promise<number> => {
      this.emitting = true;
      return out >= 0 ? sendRange(out, fd, pos, n, signal, meter) : copyRange(this.socket, fd, pos, n, signal);
    };
    let reported = performance.now();
    // A zero-copy range of one chunk has nothing to pipeline: its send job
    // reads whatever is cold itself, on pagewarm's threads, and a separate
    // warm-up first would only add a round trip. The copying path keeps it: its reads are on the libuv pool.
    const chunk = binding.chunkSize();
    const warm = this.range.warm && !(out >= 0 && length >= 0 && length <= chunk);
    const sent = await sendChunks({
      fd, offset, length, chunk, warm, dropBehind, signal, emit, meter,
      progress: (bytes) => {
        internal(this.socket)._unrefTimer?.call(this.socket);
        if (progress && !signal.aborted && performance.now() - reported >= progress.intervalMs) {
          reported = performance.now();
          progress.onProgress({ bytes, total: length, fromDisk: meter!.fromDisk });
        }
      },
    });
    progress?.onProgress({ bytes: sent, total: sent, fromDisk: meter!.fromDisk });
    return sent;
  }

  /** Settles the call once: resumes or destroys the socket, closes the file, then resolves or rejects. */
  private settle(err: SendFileError | undefined, bytes: number): void {
    if (this.state === 'done') return;
    const running = this.state === 'running';
    this.state = 'done';
    this.stopWaiting?.();
    // A failed send may leave warm-ups of later chunks running: stop them. A
    // completed one has awaited every warm-up it started (at most those of
    // ranges past a shrunken end, which return at once), and abort()'s event
    // dispatch is not free: skipped.
    if (err) this.controller.abort();

    let reason: SendFileError | undefined;
    if (err) {
      const sent = typeof err.bytesSent === 'number' ? err.bytesSent : 0;
      reason = err instanceof Error ? err : (new Error(String(err)) as SendFileError);
      if (this.closed) {
        reason = socketError('ERR_STREAM_DESTROYED', 'The socket was destroyed during sendFile', sent, internal(this.socket).errored);
      } else {
        reason.bytesSent = sent;
      }
      const pieceQueued = (err as { [PIECE_QUEUED]?: true })[PIECE_QUEUED] === true;
      const untouched = sent === 0 && !pieceQueued && (!this.emitting || err instanceof AbortError);
      if (running && !(untouched && !this.closed && !this.socket.destroyed)) this.socket.destroy();
    }
    if (running) this.done!(); // held writes go on (or fail, on a destroyed socket)

    void this.opened
      .then((r) => (r.ok ? r.input.close() : undefined))
      .catch(() => undefined)
      .then(() => (reason ? this.reject(reason) : this.resolve({ bytes, zeroCopy: this.zeroCopy })));
  }

  private readonly onAbort = (): void => {
    if (this.state === 'queued') {
      this.settle(abortError(this.signal, 0), 0);
    } else if (this.state === 'running') {
      this.controller.abort(this.signal?.reason);
    }
  };

  /** The socket closed (called by its {@link Hold}'s one 'close' listener while this send's marker is pending). */
  readonly onClose = (): void => {
    if (this.state === 'queued') {
      unhold(this.socket, this.marker);
      this.settle(socketError('ERR_STREAM_DESTROYED', 'The socket was destroyed before sendFile started', 0, internal(this.socket).errored), 0);
    } else if (this.state === 'running') {
      this.closed = true;
      this.controller.abort();
    }
  };

  private readonly onMarkerDone = (err?: Error | null): void => {
    unhold(this.socket, this.marker);
    if (err && this.state === 'queued') {
      this.settle(socketError('ERR_STREAM_DESTROYED', 'The socket was destroyed before sendFile started', 0, err), 0);
    }
  };
}

function connected(socket: net.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onConnect = (): void => {
      socket.removeListener('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      socket.removeListener('connect', onConnect);
      reject(socketError('ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'Socket closed before the connection was established', 0));
    };
    socket.once('connect', onConnect);
    socket.once('close', onClose);
  });
}
