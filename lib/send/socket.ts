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
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as net from 'node:net';
import { constants as osConstants } from 'node:os';
import { TLSSocket } from 'node:tls';
import { binding } from '../core/native';
import { capabilities, noteCopyingWait } from '../core/config';
import { prepareForRead } from '../core/warm';
import { openForReading } from '../core/open';
import { advise } from '../core/residency';
import { abortError, sendRange } from './transfer';
import { whenAborted } from '../core/abort';
import { AbortError, invalidArgType, systemError, isNativeFailure, type CodedError, type NativeFailure } from '../core/errors';
import { toBoolean, toFd, toOptions, toPosition, toSignal, type FileLike } from '../core/validate';

/** Options for {@link sendFile}. */
export interface SendFileOptions {
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
export type SendFileError = Error & { code?: string; bytesSent: number };

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
    source = pinSource(source); // last: nothing below throws before begin() owns it
    // The marker must be written now, synchronously: writes the caller makes
    // right after this call are then queued behind it.
    return new Promise<SendFileResult>((resolve, reject) => {
      new SocketSend(socket, source, { offset, length, warm, dropBehind }, signal, resolve, reject).begin();
    });
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
): Promise<SendFileResult> {
  try {
    checkSocket(socket);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise<SendFileResult>((resolve, reject) => {
    new SocketSend(socket, { owned: fd }, { offset, length, warm: true, dropBehind: false }, signal, resolve, reject).begin();
  });
}

// ---------------------------------------------------------------------------
// The file.

/**
 * Where the bytes come from: a path to open, a caller's descriptor, our
 * duplicate or reopened copy of one (see {@link pinSource}), or one the
 * caller of this module owns and keeps open.
 */
export type Source = { path: string } | { fd: number } | { pinned: number } | { reopened: number } | { owned: number };

/** Validates sendFile's `file` argument. @internal */
export function toSource(file: unknown): Source {
  if (typeof file === 'string') return { path: file };
  if (typeof file === 'number' || (typeof file === 'object' && file !== null && typeof (file as FileHandle).fd === 'number')) {
    return { fd: toFd(file, 'file') };
  }
  throw invalidArgType('file', 'of type string or number or an instance of FileHandle', file);
}

/** An open source descriptor and how to let go of it. @internal */
export interface Input {
  fd: number;
  close(): Promise<void>;
}

const O_READ = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);

/** The native call that ties a duplicate of a caller's descriptor to this environment (not in the portable fallback). */
interface Pinning {
  pin(fd: number): number | NativeFailure;
}
const pinning: Pinning | undefined =
  typeof (binding as Partial<Pinning>).pin === 'function' ? (binding as unknown as Pinning) : undefined;

/**
 * For a caller's descriptor: checks it (EBADF, EISDIR, ESPIPE, EINVAL) and
 * takes a private duplicate, synchronously, before the caller gets control
 * back: closing it while the send runs (and the kernel handing its number to
 * another file) cannot then redirect the send. The duplicate belongs to the
 * native environment: if a worker is terminated mid-send it is closed with
 * the worker, never leaked. (The portable fallback reopens through
 * /proc/self/fd where it can.) Call it last before the first await.
 * {@link openSource}'s close() releases it. @internal
 */
export function pinSource(source: Source): Source {
  if (!('fd' in source)) return source;
  validate(source.fd);
  if (pinning) {
    const dup = pinning.pin(source.fd);
    if (isNativeFailure(dup)) throw systemError(dup);
    return { pinned: dup };
  }
  if (process.platform === 'linux') {
    try {
      return { reopened: fs.openSync(`/proc/self/fd/${source.fd}`, O_READ) };
    } catch (err) {
      // Out of descriptors: refused before the socket is touched, as the
      // native dup(2) refuses; never a send on the caller's descriptor then.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EMFILE' || code === 'ENFILE') throw systemError({ errno: osConstants.errno[code], syscall: 'dup' });
      /* otherwise not reopenable: use the caller's descriptor */
    }
  }
  return source;
}

/**
 * Opens a path, or wraps a descriptor already checked by {@link pinSource}.
 * @internal
 */
export async function openSource(source: Source): Promise<Input> {
  if ('owned' in source) return { fd: source.owned, close: async () => undefined };
  if ('pinned' in source) {
    const fd = source.pinned;
    return { fd, close: async () => binding.unpin(fd) };
  }
  if ('reopened' in source) {
    const fd = source.reopened;
    return { fd, close: () => new Promise<void>((resolve) => fs.close(fd, () => resolve())) };
  }
  if ('path' in source) return openPath(source.path);
  return { fd: source.fd, close: async () => undefined };
}

/**
 * Opens a path for reading (O_NONBLOCK, so a FIFO cannot hang the open) and
 * checks what it opened (EISDIR, ESPIPE, EINVAL). The open runs through the
 * binding ({@link openForReading}): on pagewarm's threads with the native
 * addon, and the descriptor belongs to the calling thread's environment, so
 * a worker terminated while the open or the send is in flight cannot leak it.
 * Errors are Node's: `ENOENT: no such file or directory, open '/x'` with `path`.
 * @internal
 */
export async function openPath(path: string): Promise<Input> {
  const file = await openForReading(path);
  const input: Input = { fd: file.fd, close: async () => file.close() };
  try {
    validate(input.fd);
  } catch (err) {
    await input.close();
    throw err;
  }
  return input;
}

/** The native checks on a source descriptor (EBADF, EISDIR, ESPIPE, EINVAL), without reading. */
export function validate(fd: number): void {
  const r = binding.warmSync(fd, 0, 0);
  if (isNativeFailure(r)) throw systemError(r);
}

// ---------------------------------------------------------------------------
// The socket.

interface InternalSocket {
  _handle?: { fd?: number; writeQueueSize?: number } | null;
  _destroy: (err: Error | null, cb: (err?: Error | null) => void) => void;
  _write: WriteFn;
  _writev: WritevFn | null;
  _unrefTimer?: () => void;
  encrypted?: boolean;
  connecting: boolean;
  errored?: Error | null;
}

type Callback = (err?: Error | null) => void;
type WriteFn = (chunk: unknown, encoding: string, cb: Callback) => void;
type Chunk = { chunk: unknown; encoding: string };
type WritevFn = (chunks: Chunk[] & { allBuffers?: boolean }, cb: Callback) => void;

function internal(socket: net.Socket): InternalSocket {
  return socket as unknown as InternalSocket;
}

function socketError(code: string, message: string, bytesSent: number, cause?: unknown): SendFileError & CodedError {
  const err = new Error(message, cause === undefined || cause === null ? undefined : { cause }) as SendFileError & CodedError;
  err.code = code;
  err.bytesSent = bytesSent;
  return err;
}

function checkSocket(socket: net.Socket): void {
  const s = internal(socket);
  if (socket.destroyed || s.errored) {
    throw socketError('ERR_STREAM_DESTROYED', 'Cannot call sendFile after a socket was destroyed', 0, s.errored);
  }
  if (socket.writableEnded || socket.writable === false) {
    throw socketError('ERR_STREAM_WRITE_AFTER_END', 'Cannot call sendFile after a socket was ended', 0);
  }
  if (!s.connecting && !s._handle) {
    throw socketError('ERR_SOCKET_CLOSED', 'Cannot call sendFile on a socket that is not connected', 0);
  }
}

function socketFd(socket: net.Socket): number {
  const fd = internal(socket)._handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : -1;
}

/** Whether sends to this socket can be zero-copy (its descriptor is checked again at start). */
function zeroCopyFor(socket: net.Socket): boolean {
  if (!capabilities().zeroCopySend) return false;
  const s = internal(socket);
  if (s.encrypted || socket instanceof TLSSocket) return false; // TLS: bytes must go through the cipher
  return s.connecting || socketFd(socket) >= 0;
}

/**
 * Per socket: the original write methods, the markers pending on it, and
 * the socket's one 'close' listener for all of them (one per held socket,
 * however many sends are queued: a listener per send would trip Node's
 * MaxListenersExceededWarning at 11 queued sends).
 */
interface Hold {
  pending: Map<unknown, SocketSend>;
  write: WriteFn;
  writev: WritevFn | null;
  onClose: () => void;
}

const holds = new WeakMap<net.Socket, Hold>();

function hold(socket: net.Socket): Hold {
  const existing = holds.get(socket);
  if (existing) return existing;
  const s = internal(socket);
  const h: Hold = {
    pending: new Map(),
    write: s._write,
    writev: s._writev,
    // A snapshot: a queued send's onClose() unholds its marker.
    onClose: () => [...h.pending.values()].forEach((send) => send.onClose()),
  };
  socket.on('close', h.onClose);
  s._write = function heldWrite(this: net.Socket, chunk, encoding, cb) {
    const send = h.pending.get(chunk);
    if (send) send.start(cb);
    else h.write.call(this, chunk, encoding, cb);
  };
  if (h.writev) {
    s._writev = function heldWritev(this: net.Socket, chunks, cb) {
      if (!chunks.some((c) => h.pending.has(c.chunk))) {
        h.writev!.call(this, chunks, cb);
        return;
      }
      // Split around the markers: plain runs go to the original methods, a
      // marker runs its send, each step after the previous one completed.
      let i = 0;
      const step: Callback = (err) => {
        if (err) return cb(err);
        if (i >= chunks.length) return cb();
        const send = h.pending.get(chunks[i].chunk);
        if (send) {
          i++;
          return send.start(step);
        }
        let j = i;
        while (j < chunks.length && !h.pending.has(chunks[j].chunk)) j++;
        const run = chunks.slice(i, j) as Chunk[] & { allBuffers?: boolean };
        i = j;
        if (run.length === 1) return h.write.call(this, run[0].chunk, run[0].encoding, step);
        run.allBuffers = chunks.allBuffers;
        return h.writev!.call(this, run, step);
      };
      step();
    };
  }
  holds.set(socket, h);
  return h;
}

function unhold(socket: net.Socket, marker: Buffer): void {
  const h = holds.get(socket);
  if (!h || !h.pending.delete(marker) || h.pending.size > 0) return;
  const s = internal(socket);
  // Assigned back, never deleted: deleting an own property would drop the
  // socket into V8's slow dictionary mode for every later property access
  // (measured: 259 -> 177 µs of CPU per 64 KiB send on this VM).
  s._write = h.write;
  s._writev = h.writev;
  socket.removeListener('close', h.onClose);
  holds.delete(socket);
}

interface Range {
  offset: number;
  length: number;
  warm: boolean;
  dropBehind: boolean;
}

type Opened = { ok: true; input: Input } | { ok: false; error: unknown };

/** One sendFile call on one socket: queued behind earlier writes, running, or done. */
class SocketSend {
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
    const emit = (pos: number, n: number): Promise<number> => {
      this.emitting = true;
      return out >= 0 ? sendRange(out, fd, pos, n, signal) : copyRange(this.socket, fd, pos, n, signal);
    };
    const { offset, length, dropBehind } = this.range;
    // A zero-copy range of one chunk has nothing to pipeline: its send job
    // reads whatever is cold itself, on pagewarm's threads, and a separate
    // warm-up first would only add a round trip (about 7 us of a 64 KiB
    // send's 70). The copying path keeps it: its reads are on the libuv pool.
    const chunk = binding.chunkSize();
    const warm = this.range.warm && !(out >= 0 && length >= 0 && length <= chunk);
    return pipeline(fd, offset, length, chunk, warm, dropBehind, signal, emit, () => {
      internal(this.socket)._unrefTimer?.call(this.socket);
    });
  }

  /** Settles the call once: resumes or destroys the socket, closes the file, then resolves or rejects. */
  private settle(err: SendFileError | undefined, bytes: number): void {
    if (this.state === 'done') return;
    const running = this.state === 'running';
    this.state = 'done';
    this.stopWaiting?.();
    // A failed send may leave warm-ups of later chunks running: stop them. A
    // completed one has awaited every warm-up it started (at most those of
    // ranges past a shrunken end, which return at once), and abort() costs
    // 15-25 us of event dispatch per call: skipped.
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

// ---------------------------------------------------------------------------
// Moving the bytes.

type Emit = (pos: number, n: number) => Promise<number>;
type Outcome = { ok: true; value: number } | { ok: false; error: unknown };

function outcome(p: Promise<number>): Promise<Outcome> {
  return p.then(
    (value) => ({ ok: true, value }),
    (error) => ({ ok: false, error }),
  );
}

function withBytesSent(err: unknown, before: number): SendFileError {
  const e = (err instanceof Error ? err : new Error(String(err))) as SendFileError;
  e.bytesSent = before + (typeof e.bytesSent === 'number' ? e.bytesSent : 0);
  return e;
}

/** Page-cache folios are naturally aligned, at most 2 MiB (PMD size) on x86-64. */
const DROP_ALIGN = 2 << 20;

/** Chunks warmed ahead of the one being sent (each warm-up is one pool job). */
const WARM_AHEAD = 2;

/**
 * Sends the range chunk by chunk; with `warm`, chunks N+1 and N+2 are warmed
 * on pagewarm's threads while chunk N is emitted. Stops at end of file (a short
 * chunk). Rejections carry the total `bytesSent`.
 */
async function pipeline(
  fd: number,
  offset: number,
  length: number,
  chunk: number,
  warm: boolean,
  dropBehind: boolean,
  signal: AbortSignal,
  emit: Emit,
  progress: () => void,
): Promise<number> {
  const end = length < 0 ? Number.MAX_SAFE_INTEGER : offset + length;
  // Warm-ups of the chunks ahead, in order. Each is settled into an Outcome at
  // once, so one that fails while a chunk is being sent is never an
  // unhandled rejection.
  const warming: Array<Promise<Outcome>> = [];
  let warmedTo = offset;
  const warmAhead = (ahead: number): void => {
    while (warm && warming.length < ahead && warmedTo < end) {
      const n = Math.min(chunk, end - warmedTo);
      warming.push(outcome(prepareForRead(fd, warmedTo, n, { signal })));
      warmedTo += n;
    }
  };
  let sent = 0;
  let pos = offset;
  let dropped = offset;
  warmAhead(1); // the first chunk alone: its bytes leave as soon as it is warm
  while (pos < end) {
    const n = Math.min(chunk, end - pos);
    if (warm) {
      const w = await warming.shift()!;
      if (!w.ok) throw withBytesSent(w.error, sent);
      if (w.value === 0) break; // at or past the end of the file
      warmAhead(WARM_AHEAD); // chunks N+1.. warm while chunk N is sent
    }
    let got: number;
    try {
      got = await emit(pos, n);
    } catch (err) {
      throw withBytesSent(err, sent);
    }
    sent += got;
    pos += got;
    progress();
    if (dropBehind) {
      // The chunk before this one has most likely left the socket buffer.
      // Boundaries are aligned: DONTNEED skips a large folio that straddles
      // the end of its range, and would then skip it on both sides.
      const upTo = Math.floor((pos - chunk) / DROP_ALIGN) * DROP_ALIGN;
      if (upTo > dropped) {
        advise(fd, dropped, upTo - dropped, 'dontneed');
        dropped = upTo;
      }
    }
    if (got < n) break;
  }
  // Once more over the whole range, for the folios around the boundaries
  // (never with length 0: that would mean "to the end of the file").
  if (dropBehind && pos > offset) advise(fd, offset, pos - offset, 'dontneed');
  return sent;
}

const COPY_PIECE = 256 << 10;

/** Marks an abort that left part of a piece queued in the socket: the stream is cut mid-piece. */
const PIECE_QUEUED = Symbol('pagewarm.pieceQueued');

/**
 * One write through the socket's original `_write`; resolves with the bytes
 * of the piece that reached the kernel. A write the kernel took at once calls
 * back synchronously. One that had to queue counts in `stats().waiting` until
 * it completes, as a parked native send does, and then:
 * - an abort stops waiting for it and rejects with the bytes that had left
 *   (the caller destroys the socket, dropping the rest);
 * - a local destroy() completes it without an error (Node cancels it): the
 *   bytes that had left are read from libuv's write queue just before the
 *   handle closes.
 * The counts are exact for plain sockets. With TLS the queue holds
 * ciphertext, so a piece cut short counts as not sent.
 */
function writeThrough(socket: net.Socket, write: WriteFn, piece: Buffer, signal: AbortSignal): Promise<number> {
  const s = internal(socket);
  const handle = socket instanceof TLSSocket ? undefined : s._handle;
  const left = (): number => {
    const queued = handle?.writeQueueSize;
    return typeof queued === 'number' ? Math.min(queued, piece.length) : piece.length;
  };
  return new Promise<number>((resolve, reject) => {
    let queued = false;
    let settled = false;
    let leftAtDestroy: number | undefined;
    const destroy = s._destroy;
    const finish = (): void => {
      settled = true;
      if (!queued) return;
      noteCopyingWait(-1);
      signal.removeEventListener('abort', onAbort);
      if (s._destroy === watchDestroy) s._destroy = destroy;
    };
    const watchDestroy: InternalSocket['_destroy'] = function (this: net.Socket, err, cb) {
      if (!settled) leftAtDestroy = left();
      s._destroy = destroy;
      destroy.call(this, err, cb);
    };
    const onAbort = (): void => {
      if (settled) return;
      const sent = piece.length - left();
      finish();
      const err = new AbortError(undefined, { cause: signal.reason }) as SendFileError & { [PIECE_QUEUED]?: true };
      err.bytesSent = sent;
      err[PIECE_QUEUED] = true;
      reject(err);
    };
    write.call(socket, piece, 'buffer', (err) => {
      if (settled) return;
      finish();
      if (err) reject(err);
      else resolve(piece.length - (leftAtDestroy ?? 0));
    });
    if (!settled) {
      queued = true;
      noteCopyingWait(1);
      s._destroy = watchDestroy;
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    }
  });
}

type Piece = { ok: true; buf: Buffer } | { ok: false; error: unknown };

/**
 * The copying path: reads the chunk in 256 KiB pieces (one read ahead, on the
 * libuv threadpool) and writes each through the socket's original `_write`,
 * waiting for its callback (the bytes are then in the kernel, or with TLS).
 */
async function copyRange(socket: net.Socket, fd: number, pos: number, n: number, signal: AbortSignal): Promise<number> {
  const write = holds.get(socket)?.write ?? internal(socket)._write;
  const read = (at: number, size: number): Promise<Piece> =>
    new Promise((resolve) => {
      const buf = Buffer.allocUnsafe(size);
      fs.read(fd, buf, 0, size, at, (error, got) => resolve(error ? { ok: false, error } : { ok: true, buf: buf.subarray(0, got) }));
    });
  let done = 0;
  let next: Promise<Piece> | undefined = read(pos, Math.min(COPY_PIECE, n));
  while (next) {
    const r: Piece = await next;
    if (!r.ok) throw withBytesSent(r.error, done);
    const piece: Buffer = r.buf;
    const full: boolean = piece.length === Math.min(COPY_PIECE, n - done);
    const rest: number = n - done - piece.length;
    next = full && rest > 0 ? read(pos + done + piece.length, Math.min(COPY_PIECE, rest)) : undefined;
    if (signal.aborted) throw withBytesSent(new AbortError(undefined, { cause: signal.reason }), done);
    if (piece.length > 0) {
      let wrote: number;
      try {
        wrote = await writeThrough(socket, write, piece, signal);
      } catch (err) {
        // Destroyed locally between two pieces: the next write finds the
        // handle gone. Natively the same moment reads ERR_STREAM_DESTROYED.
        if ((err as CodedError).code === 'ERR_SOCKET_CLOSED') {
          throw socketError('ERR_STREAM_DESTROYED', 'The socket was destroyed during sendFile', done, internal(socket).errored);
        }
        throw withBytesSent(err, done);
      }
      // Destroyed locally while the write was queued: Node completes the
      // cancelled write without an error; `wrote` counts what had left.
      if (socket.destroyed) {
        throw socketError('ERR_STREAM_DESTROYED', 'The socket was destroyed during sendFile', done + wrote, internal(socket).errored);
      }
    }
    done += piece.length;
  }
  return done;
}
