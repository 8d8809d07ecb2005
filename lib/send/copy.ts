/**
 * The copying path (TLS, the portable fallback, sockets without a
 * descriptor): the range read in pieces on the libuv threadpool and written
 * through the socket's own `_write`. Not public API.
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { TLSSocket } from 'node:tls';
import { PIECE_BYTES, givePiece, takePiece } from '../core/piece-pool';
import { noteCopyingWait } from '../core/config';
import { AbortError, type CodedError } from '../core/errors';
import { socketError, withBytesSent, type SendFileError } from './errors';
import { internal, originalWrite, type InternalSocket, type WriteFn } from './hold';

const COPY_PIECE = PIECE_BYTES;

/** Marks an abort that left part of a piece queued in the socket: the stream is cut mid-piece. */
export const PIECE_QUEUED = Symbol('pagewarm.pieceQueued');

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
 * Pieces come from the pool in core/piece-pool.ts, given back once written; a piece
 * still queued or in flight when the send fails is left to the GC.
 */
export async function copyRange(socket: net.Socket, fd: number, pos: number, n: number, signal: AbortSignal): Promise<number> {
  const write = originalWrite(socket);
  const read = (at: number, size: number): Promise<Piece> =>
    new Promise((resolve) => {
      const buf = takePiece(size);
      fs.read(fd, buf, 0, size, at, (error, got) => {
        if (error) givePiece(buf);
        resolve(error ? { ok: false, error } : { ok: true, buf: buf.subarray(0, got) });
      });
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
    givePiece(piece); // written (or empty): nothing reads it again
    done += piece.length;
  }
  return done;
}
