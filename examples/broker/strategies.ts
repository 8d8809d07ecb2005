/**
 * The three ways the broker can answer a FETCH with segment bytes.
 *
 *   blocking  sendfile(2) on the event loop with no warm-up: Kafka before
 *             KAFKA-7504. A cold page makes the whole event loop (every
 *             producer's ack) wait for the disk.
 *   stream    fs.createReadStream piped to the socket: idiomatic Node. Reads
 *             run on the libuv pool and every byte is copied through a Buffer.
 *   pagewarm  the LINE fix, KAFKA-7504's shape: `prepareForRead` makes the
 *             range resident on pagewarm's threads, then `sendFile` sends it
 *             from the page cache with zero-copy sendfile(2), never on the
 *             event loop.
 *
 * `blocking` uses pagewarm's `transferToSync` on the socket's descriptor,
 * `pagewarm` `prepareForRead(fd, offset, length)` and then
 * `sendFile(socket, fd, { offset, length, warm: false })` (the range is
 * already warm).
 */
import { createReadStream } from 'node:fs';
import type { Socket } from 'node:net';
import * as pw from 'pagewarm';

export const STRATEGIES = ['blocking', 'stream', 'pagewarm'] as const;
export type Strategy = (typeof STRATEGIES)[number];

/** Sends `count` bytes of the file `fd` from `offset` after `header`, in order, on `socket`. */
export type FetchSender = (socket: Socket, header: Buffer, fd: number, offset: number, count: number) => Promise<void>;

export interface StrategyOptions {
  /** highWaterMark of the read stream (`stream` only). Default: Node's default, 64 KiB. */
  streamHighWaterMark?: number;
  /**
   * `pagewarm` only, how a FETCH is answered (for measuring the per-request
   * cost of each shape; the benchmark uses the default):
   *   'prepare+sendFile' (default): `await prepareForRead(fd, offset, count)`
   *     for the whole range first (KAFKA-7504's shape), then
   *     `sendFile(..., { warm: false })`;
   *   'sendFile': `sendFile(socket, fd, { warm: true })` alone, which warms
   *     chunk by chunk on pagewarm's threads as it sends (a range of one
   *     chunk, as a 1 MiB FETCH is, is read and sent by one job there);
   *   'prepare+sendfile': `prepareForRead`, then the header is flushed and the
   *     bytes go by the descriptor-level `transferTo(socketFd, fd, ...)` on
   *     pagewarm's threads, without sendFile's ordering machinery (safe here
   *     only because the broker writes nothing else to a connection while a
   *     FETCH is answered).
   */
  pagewarmPath?: PagewarmPath;
}

export const PAGEWARM_PATHS = ['prepare+sendFile', 'sendFile', 'prepare+sendfile'] as const;
export type PagewarmPath = (typeof PAGEWARM_PATHS)[number];

/**
 * The strategies worth comparing in this process, and why the others are
 * not: `blocking` and `pagewarm` are about sendfile(2), so with pagewarm's
 * portable fallback (which copies) a benchmark of them means nothing. Every
 * strategy still runs everywhere ({@link fetchSender}): on the fallback the
 * bytes are copied, exact and in order.
 */
export function availableStrategies(): { available: Strategy[]; missing: Partial<Record<Strategy, string>> } {
  const caps = pw.capabilities();
  if (caps.zeroCopySend) return { available: [...STRATEGIES], missing: {} };
  const why = `pagewarm's native addon is not loaded (${caps.fallbackReason ?? 'fallback in use'})`;
  return { available: ['stream'], missing: { blocking: why, pagewarm: why } };
}

/** The descriptor of a plain TCP socket (what sendfile writes to). */
export function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('socket has no file descriptor');
  return fd;
}

/** Writes `buf` and resolves once it has been handed to the kernel. */
function writeFlushed(socket: Socket, buf: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.write(buf, (err) => (err ? reject(err) : resolve()));
  });
}

export function fetchSender(strategy: Strategy, options: StrategyOptions = {}): FetchSender {
  switch (strategy) {
    case 'blocking': {
      return async (socket, header, fd, offset, count) => {
        await writeFlushed(socket, header);
        // Blocks the event loop until every byte is in the socket, including
        // the time the disk takes for pages that are not resident.
        pw.transferToSync(socketFd(socket), fd, offset, count);
      };
    }
    case 'stream': {
      const hwm = options.streamHighWaterMark;
      return async (socket, header, fd, offset, count) => {
        socket.write(header);
        const source = createReadStream('', { fd, start: offset, end: offset + count - 1, autoClose: false, ...(hwm ? { highWaterMark: hwm } : {}) });
        // pipe() with end:false, not stream.pipeline: pipeline leaves listeners
        // on a destination it does not end, one set per fetch.
        await new Promise<void>((resolve, reject) => {
          const fail = (err?: Error) => {
            source.unpipe(socket);
            source.destroy();
            socket.off('close', fail);
            reject(err ?? new Error('socket closed'));
          };
          source.once('error', fail);
          socket.once('close', fail);
          source.once('end', () => {
            socket.off('close', fail);
            resolve();
          });
          source.pipe(socket, { end: false });
        });
      };
    }
    case 'pagewarm': {
      if (options.pagewarmPath === 'sendFile') {
        return async (socket, header, fd, offset, count) => {
          socket.write(header); // sendFile sends after bytes already queued
          await pw.sendFile(socket, fd, { offset, length: count, warm: true });
        };
      }
      if (options.pagewarmPath === 'prepare+sendfile') {
        return async (socket, header, fd, offset, count) => {
          await pw.prepareForRead(fd, offset, count);
          await writeFlushed(socket, header);
          await pw.transferTo(socketFd(socket), fd, offset, count);
        };
      }
      return async (socket, header, fd, offset, count) => {
        await pw.prepareForRead(fd, offset, count);
        socket.write(header); // sendFile sends after bytes already queued
        await pw.sendFile(socket, fd, { offset, length: count, warm: false });
      };
    }
  }
}
