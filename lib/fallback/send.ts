/**
 * Sending in the fallback: the source range is read through a buffer of the
 * job's own and written to the destination, which cannot be reopened as the
 * source is (sockets). Each write first checks that the destination's number
 * still names the same socket or file, so a send whose destination was
 * closed under it fails with EBADF and never writes into a descriptor that
 * took the number (native, working on its own duplicate, would see EPIPE or
 * ECONNRESET from a peer that went away). All failures are reported under
 * `sendfile`, with the bytes sent so far once bytes have moved.
 */
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import type { Binding } from '../core/binding';
import { PIECE_BYTES, givePiece, takePiece } from '../core/piece-pool';
import type { NativeFailure } from '../core/errors';
import { failure, openFlags, O_ACCMODE, O_PATH } from '../core/descriptor';
import { inspectFd, isFailure, rangeLength, reopen } from './inspect';
import { aborted, type FallbackPool } from './pool';

const E = osConstants.errno;

/**
 * The binding's send and sendSync. send checks both descriptors on the
 * calling thread and returns a failure found there (EMFILE too, when no
 * private reopen of the source can be had) or 0 for an empty range;
 * otherwise it resolves with the bytes sent, reading one chunk per slot of
 * `pool` and backing off (1 ms doubling to 50 ms, counted in
 * `pool.waiting`) while a non-blocking destination is full. sendSync does
 * the same on the calling thread, sleeping it to back off.
 */
export function sendCalls(pool: FallbackPool): Pick<Binding, 'send' | 'sendSync'> {
  return {
    send(outFd, inFd, offset, length, id) {
      const out = inspectOut(outFd);
      if (isFailure(out)) return out;
      const info = inspectFd(inFd, 'sendfile');
      if (isFailure(info)) return info;
      const total = rangeLength(info.size, offset, length);
      if (total === 0) return 0;
      // Out of descriptors: EMFILE before any byte moves, as the native dup(2) fails.
      const reopened = reopen(inFd, 'sendfile');
      if (isFailure(reopened)) return reopened;
      return pool.start(id, inFd, info, async (src) => {
        // This job's own buffer (its bytes matter), a pooled piece where one is
        // large enough: given back when the job ends, its reads and writes done.
        const size = Math.min(pool.readSize(), total);
        const buf = size <= PIECE_BYTES ? takePiece(size) : Buffer.allocUnsafe(size);
        try {
          let sent = 0;
          let backoff = 1;
          while (sent < total) {
            if (pool.isCancelled(id)) throw aborted('sendfile', sent);
            let n: number;
            try {
              n = await pool.readChunk(src, buf, Math.min(buf.length, total - sent), offset + sent);
            } catch (e) {
              throw { ...failure(e, 'sendfile'), bytesSent: sent };
            }
            if (n === 0) break;
            let written = 0;
            while (written < n) {
              if (pool.isCancelled(id)) throw aborted('sendfile', sent + written);
              try {
                written += await writeOut(out, buf, written, n - written);
                backoff = 1;
              } catch (e) {
                const f = e as NativeFailure;
                if (f.errno !== E.EAGAIN && f.errno !== E.EWOULDBLOCK) throw { ...f, bytesSent: sent + written };
                // A full non-blocking destination: no poller here, so back off and retry.
                pool.waiting++;
                try {
                  await new Promise((resolve) => setTimeout(resolve, backoff));
                } finally {
                  pool.waiting--;
                }
                backoff = Math.min(backoff * 2, 50);
              }
            }
            sent += n;
          }
          return sent;
        } finally {
          givePiece(buf);
        }
      }, reopened);
    },

    sendSync(outFd, inFd, offset, length) {
      const bad = inspectOut(outFd);
      if (isFailure(bad)) return bad;
      const info = inspectFd(inFd, 'sendfile');
      if (isFailure(info)) return info;
      const total = rangeLength(info.size, offset, length);
      const { fd: src, reopened } = pool.syncFd(inFd, info);
      const buf = Buffer.allocUnsafe(Math.max(1, Math.min(pool.readSize(), total)));
      let sent = 0;
      try {
        while (sent < total) {
          const n = fs.readSync(src, buf, 0, Math.min(buf.length, total - sent), offset + sent);
          if (n === 0) break;
          let written = 0;
          let backoff = 1;
          while (written < n) {
            try {
              written += fs.writeSync(outFd, buf, written, n - written);
              backoff = 1;
            } catch (e) {
              const code = (e as NodeJS.ErrnoException).code;
              if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK') return { ...failure(e, 'sendfile'), bytesSent: sent + written };
              sleepSync(backoff); // a full non-blocking destination
              backoff = Math.min(backoff * 2, 50);
            }
          }
          sent += n;
        }
      } catch (e) {
        return { ...failure(e, 'sendfile'), bytesSent: sent };
      } finally {
        if (reopened !== undefined) fs.closeSync(reopened);
      }
      return sent;
    },
  };
}

/**
 * A send's write(2) to a socket whose peer reset it raises SIGPIPE. Node
 * ignores SIGPIPE, but a program can restore its default (fatal) disposition
 * by adding and then removing a listener. The native binding blocks SIGPIPE
 * on its own threads for each send; JavaScript cannot, so the fallback keeps
 * a no-op listener on the main thread: SIGPIPE stays caught for the whole
 * process (workers included) and the write fails with EPIPE. (A worker cannot
 * install one; a process that loads pagewarm only in workers keeps whatever
 * disposition it has.) Installs the listener once; does nothing on Windows.
 */
export function keepSigpipeCaught(): void {
  if (process.platform === 'win32') return; // no SIGPIPE
  if (!isMainThread || process.listeners('SIGPIPE').includes(ignoreSigpipe)) return;
  process.on('SIGPIPE', ignoreSigpipe);
}

function ignoreSigpipe(): void {}

/** A send's destination as it was when the send began. */
interface Destination {
  fd: number;
  dev: number;
  ino: number;
  /** O_NONBLOCK (Linux): writes never block, so they can run on the JS thread. */
  nonBlocking: boolean;
}

/** Checks the destination of a send as the native OutRef does: open, writable, not O_PATH. */
function inspectOut(outFd: number): Destination | NativeFailure {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(outFd);
  } catch (e) {
    return failure(e, 'sendfile');
  }
  const flags = openFlags(outFd);
  if (flags !== undefined && ((flags & O_PATH) !== 0 || (flags & O_ACCMODE) === fs.constants.O_RDONLY)) {
    return { errno: E.EBADF, syscall: 'sendfile' };
  }
  const nonBlocking = flags !== undefined && (flags & fs.constants.O_NONBLOCK) !== 0;
  return { fd: outFd, dev: st.dev, ino: st.ino, nonBlocking };
}

/**
 * Writes to a send's destination, which the fallback cannot duplicate. It
 * checks first that the number still names the same file or socket (else
 * EBADF: it was closed, and perhaps its number reused, so nothing is
 * written). Non-blocking destinations (sockets) are written on this thread
 * right after that check, leaving no moment for a close and a reuse in
 * between; others through the threadpool. Rejects with a NativeFailure.
 */
async function writeOut(out: Destination, buf: Buffer, from: number, count: number): Promise<number> {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(out.fd);
  } catch (e) {
    throw failure(e, 'sendfile');
  }
  if (st.dev !== out.dev || st.ino !== out.ino) throw { errno: E.EBADF, syscall: 'sendfile' } satisfies NativeFailure;
  try {
    if (out.nonBlocking) return fs.writeSync(out.fd, buf, from, count);
    return await new Promise<number>((resolve, reject) =>
      fs.write(out.fd, buf, from, count, null, (err, w) => (err ? reject(err) : resolve(w))),
    );
  } catch (e) {
    throw failure(e, 'sendfile');
  }
}

/** Sleeps the calling thread for `ms` milliseconds (sendSync on a full non-blocking destination). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
