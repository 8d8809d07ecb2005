/**
 * sendFile on a Node whose stream internals the socket hold cannot trust
 * (./hold, holdSupported): the file is copied through the socket's public
 * `write()`, and ordering is kept with public API only. While a send runs,
 * the socket's own `write()` and `end()` are wrapped on the instance: calls
 * made meanwhile (by the caller, by http) are queued, together with later
 * sendFile calls, and replayed in order once the send settles; then the
 * original methods come back. Not public API.
 */
import * as fs from 'node:fs';
import type * as net from 'node:net';
import { PIECE_BYTES, givePiece, takePiece } from '../core/piece-pool';
import { AbortError } from '../core/errors';
import type { ProgressPlan } from '../core/progress';
import { socketError, withBytesSent, type SendFileError } from './errors';
import { openSource, type Source } from './source';

const PIECE = PIECE_BYTES;

/** As sendFile resolves (./socket's SendFileResult). */
type Result = { bytes: number; zeroCopy: boolean };

type Method = (...args: unknown[]) => unknown;
type Step = { method: 'write' | 'end'; args: unknown[] } | { send: () => Promise<void> };

/** Per socket while a plain send runs: its original methods and what waits behind the send. */
interface Queue {
  write: Method;
  end: Method;
  steps: Step[];
}

const queues = new WeakMap<net.Socket, Queue>();

/**
 * Sends `[offset, offset + length)` (length -1: to the end) of `source` to
 * `socket` in 256 KiB copies, after every write made before this call and
 * before every write, end() and sendFile made after it. Settles as sendFile
 * does: an abort before the first byte leaves the socket as it was; any
 * failure after one destroys it. The source is opened and closed here.
 */
export function sendPlain(
  socket: net.Socket,
  source: Source,
  range: { offset: number; length: number },
  signal: AbortSignal | undefined,
  progress: ProgressPlan | undefined,
): Promise<Result> {
  return new Promise<Result>((resolve, reject) => {
    let started = false;
    let queuedStep: Step | undefined;
    const onAbort = (): void => {
      if (started) return; // the copy loop sees it between pieces
      const q = queues.get(socket);
      if (q && queuedStep) q.steps.splice(q.steps.indexOf(queuedStep), 1);
      // Never opened: a pinned descriptor is let go all the same.
      void openSource(source).then((input) => input.close(), () => undefined);
      reject(withBytesSent(new AbortError(undefined, { cause: signal!.reason }), 0));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const send = async (): Promise<void> => {
      if (signal?.aborted) return; // rejected by onAbort, unqueued
      started = true;
      signal?.removeEventListener('abort', onAbort);
      const write = queues.get(socket)!.write;
      try {
        resolve({ bytes: await copy(socket, write, source, range, signal, progress), zeroCopy: false });
      } catch (err) {
        const e = err as SendFileError;
        if (e.bytesSent > 0 || !(e instanceof AbortError)) socket.destroy();
        reject(e);
      }
    };
    const q = queues.get(socket);
    if (q) q.steps.push((queuedStep = { send }));
    else void run(socket, send);
  });
}

/** Wraps the socket's write() and end(), runs `first`, then every queued step, then unwraps. */
async function run(socket: net.Socket, first: () => Promise<void>): Promise<void> {
  const own = socket as unknown as Record<'write' | 'end', Method>;
  const q: Queue = { write: own.write, end: own.end, steps: [] };
  queues.set(socket, q);
  own.write = (...args: unknown[]): boolean => {
    q.steps.push({ method: 'write', args });
    return true;
  };
  own.end = (...args: unknown[]): net.Socket => {
    q.steps.push({ method: 'end', args });
    return socket;
  };
  await first();
  for (let step = q.steps.shift(); step; step = q.steps.shift()) {
    if ('send' in step) await step.send();
    else {
      try {
        q[step.method].apply(socket, step.args);
      } catch (err) {
        socket.destroy(err as Error); // what the call would have thrown, had it not waited
      }
    }
  }
  own.write = q.write;
  own.end = q.end;
  queues.delete(socket);
}

/** Copies the range piece by piece, each written through `write` and waited for; the bytes sent. */
async function copy(
  socket: net.Socket,
  write: Method,
  source: Source,
  range: { offset: number; length: number },
  signal: AbortSignal | undefined,
  progress: ProgressPlan | undefined,
): Promise<number> {
  if (socket.destroyed) throw socketError('ERR_STREAM_DESTROYED', 'The socket was destroyed before sendFile started', 0);
  const input = await openSource(source);
  let sent = 0;
  let reported = performance.now();
  try {
    for (;;) {
      if (signal?.aborted) throw withBytesSent(new AbortError(undefined, { cause: signal.reason }), sent);
      const want = range.length < 0 ? PIECE : Math.min(PIECE, range.length - sent);
      if (want <= 0) break;
      const piece = await read(input.fd, want, range.offset + sent).catch((err: unknown) => {
        throw withBytesSent(err, sent);
      });
      if (piece.length === 0) {
        givePiece(piece);
        break;
      }
      await new Promise<void>((resolve, reject) => {
        write.call(socket, piece, (err?: Error | null) => {
          if (err) reject(withBytesSent(err, sent));
          else if (socket.destroyed) reject(socketError('ERR_STREAM_DESTROYED', 'The socket was destroyed during sendFile', sent));
          else {
            givePiece(piece); // written: nothing reads it again
            resolve();
          }
        });
      });
      sent += piece.length;
      if (progress && performance.now() - reported >= progress.intervalMs) {
        reported = performance.now();
        progress.onProgress({ bytes: sent, total: range.length, fromDisk: 0 });
      }
    }
  } finally {
    await input.close();
  }
  progress?.onProgress({ bytes: sent, total: sent, fromDisk: 0 });
  return sent;
}

function read(fd: number, size: number, position: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const buf = takePiece(size);
    fs.read(fd, buf, 0, size, position, (err, got) => {
      if (err) {
        givePiece(buf);
        reject(err);
      } else resolve(buf.subarray(0, got));
    });
  });
}
