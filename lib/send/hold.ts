/**
 * The socket hold: every reliance of pagewarm on Node's stream and net
 * internals is in this file, so it can be audited in one place.
 *
 * The internals used, on `net.Socket` (and `tls.TLSSocket`):
 * - `_write(chunk, encoding, cb)` and `_writev(chunks, cb)`: Writable calls
 *   them one at a time, each after the previous callback, and net.Socket
 *   calls back once the bytes are in the kernel. sendFile replaces them
 *   while a marker of its own is pending (see {@link hold}), so the file is
 *   sent exactly where the marker was written, and restores them after.
 * - `_handle.fd`: the socket's descriptor, for sendfile(2).
 * - `_handle.writeQueueSize`: libuv's bytes not yet written, to count the
 *   bytes of a copied piece that left before an abort or destroy.
 * - `_destroy(err, cb)`: wrapped for the time a copied piece is queued, to
 *   read writeQueueSize just before the handle closes.
 * - `_unrefTimer()`: refreshes the socket's idle timeout as chunks complete.
 * - `connecting`, `errored`, `encrypted`: the socket's state.
 */
import * as net from 'node:net';
import { warnInternals } from '../core/node-internals';

export interface InternalSocket {
  _handle?: { fd?: number; writeQueueSize?: number } | null;
  _destroy: (err: Error | null, cb: (err?: Error | null) => void) => void;
  _write: WriteFn;
  _writev: WritevFn | null;
  _unrefTimer?: () => void;
  encrypted?: boolean;
  connecting: boolean;
  errored?: Error | null;
}

export type Callback = (err?: Error | null) => void;
export type WriteFn = (chunk: unknown, encoding: string, cb: Callback) => void;
export type Chunk = { chunk: unknown; encoding: string };
export type WritevFn = (chunks: Chunk[] & { allBuffers?: boolean }, cb: Callback) => void;

export function internal(socket: net.Socket): InternalSocket {
  return socket as unknown as InternalSocket;
}

/** The socket's descriptor, or -1 when it has none (not connected, or not a plain socket). */
export function socketFd(socket: net.Socket): number {
  const handle = internal(socket)._handle;
  const fd = handle?.fd;
  if (typeof fd === 'number' && Number.isInteger(fd) && fd >= 0) return fd;
  // Asked only of plain sockets on Linux, whose libuv handles have one (-1 only while closing).
  if (handle && typeof fd !== 'number') warnInternals('net.Socket\'s _handle.fd', 'sends to sockets copy instead of sendfile(2)');
  return -1;
}

let holdChecked: boolean | undefined;

/**
 * Whether the hold works on this Node, checked once, on first use: the
 * methods are there, and Writable hands `_write` and `_writev` the very
 * chunks written, in order, also after cork() (a marker is found by
 * identity). When not, one process warning says so and every sendFile
 * copies through the socket's public write() instead (./plain).
 */
export function holdSupported(): boolean {
  if (holdChecked === undefined) {
    const problem = checkHold();
    holdChecked = problem === undefined;
    if (problem) warnInternals(`the socket hold (${problem})`, 'sendFile copies through socket.write() instead');
  }
  return holdChecked;
}

/** What is wrong with the hold on this Node, or undefined. */
function checkHold(): string | undefined {
  const proto = net.Socket.prototype as unknown as InternalSocket;
  for (const name of ['_write', '_destroy'] as const) {
    if (typeof proto[name] !== 'function') return `net.Socket.prototype.${name} is not a function`;
  }
  if (proto._writev != null && typeof proto._writev !== 'function') return 'net.Socket.prototype._writev is not a function';
  // A socket never connected: its methods replaced on the instance, as hold() does.
  const probe = new net.Socket();
  const s = internal(probe);
  const seen: unknown[] = [];
  s._write = (chunk, _encoding, cb) => {
    seen.push(chunk);
    cb();
  };
  s._writev = (chunks, cb) => {
    seen.push(...chunks.map((c) => c.chunk));
    cb();
  };
  const chunks = [Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)];
  try {
    probe.write(chunks[0]);
    probe.cork();
    probe.write(chunks[1]);
    probe.write(chunks[2]);
    probe.uncork();
  } catch (err) {
    return `writing threw ${(err as Error).message}`;
  } finally {
    probe.on('error', () => undefined);
    probe.destroy();
  }
  if (seen.length !== 3 || seen.some((c, i) => c !== chunks[i])) return 'Writable did not hand _write/_writev the chunks written';
  return undefined;
}

/** A send waiting on a held socket: started when its marker reaches `_write`, told when the socket closes. */
export interface HeldSend {
  start(done: Callback): void;
  onClose(): void;
}

/**
 * Per socket: the original write methods, the markers pending on it, and
 * the socket's one 'close' listener for all of them (one per held socket,
 * however many sends are queued: a listener per send would trip Node's
 * MaxListenersExceededWarning at 11 queued sends).
 */
export interface Hold {
  pending: Map<unknown, HeldSend>;
  write: WriteFn;
  writev: WritevFn | null;
  onClose: () => void;
}

const holds = new WeakMap<net.Socket, Hold>();

/**
 * Replaces the socket's `_write`/`_writev` (once, however many sends are
 * pending): a pending marker starts its send; other chunks go to the
 * original methods, in order.
 */
export function hold(socket: net.Socket): Hold {
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

/** Forgets a marker; the last one restores the socket's own methods and listener. */
export function unhold(socket: net.Socket, marker: Buffer): void {
  const h = holds.get(socket);
  if (!h || !h.pending.delete(marker) || h.pending.size > 0) return;
  const s = internal(socket);
  // Assigned back, never deleted: deleting an own property would drop the
  // socket into V8's slow dictionary mode for every later property access
  // (BENCHMARKS.md, send, has what that costs).
  s._write = h.write;
  s._writev = h.writev;
  socket.removeListener('close', h.onClose);
  holds.delete(socket);
}

/** The socket's own `_write`, also while it is held (the copying path writes through it). */
export function originalWrite(socket: net.Socket): WriteFn {
  return holds.get(socket)?.write ?? internal(socket)._write;
}
