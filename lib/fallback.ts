/**
 * The portable fallback: the same calls as the native binding, made with
 * ordinary reads and writes. It serves platforms other than Linux, machines
 * where the addon failed to build or load, and PAGEWARM_FORCE_FALLBACK=1.
 *
 * Warming reads the range into one reused 1 MiB scratch buffer (the bytes
 * are copied once and dropped); residency is reported as unknown; advice is
 * accepted and does nothing; sending copies through the scratch buffer.
 * These reads run on the libuv threadpool: the fallback cannot keep cold
 * reads off it the way the native threads do.
 */
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import type { Binding, NativeResidency, NativeStats } from './native';
import type { NativeFailure } from './errors';

const read = promisify(fs.read);
const write = promisify(fs.write);
const fstat = promisify(fs.fstat);

const SCRATCH = 1 << 20;
const EAGAIN = 11;

interface Counters {
  warmedBytes: number;
  fallbackReads: number;
}

function failure(err: unknown, syscall: string): NativeFailure {
  const e = err as NodeJS.ErrnoException;
  return { errno: Math.abs(e.errno ?? 22), syscall: e.syscall && e.syscall !== 'fstat' ? e.syscall : syscall };
}

/** What the native FileRef checks: something with a page cache, readable. */
function checkStat(st: fs.Stats, syscall: string): NativeFailure | undefined {
  if (st.isDirectory()) return { errno: 21, syscall }; // EISDIR
  if (st.isFIFO() || st.isSocket()) return { errno: 29, syscall }; // ESPIPE
  if (st.isCharacterDevice()) return { errno: 22, syscall }; // EINVAL
  return undefined;
}

function clamp(size: number, offset: number, length: number): number {
  if (length < 0) return Math.max(0, size - offset);
  return length;
}

export function fallbackBinding(): Binding {
  const counters: Counters = { warmedBytes: 0, fallbackReads: 0 };
  const cancelled = new Set<number>();
  const running = new Set<number>();
  let scratch: Buffer | undefined;
  let chunkSize = 8 << 20;
  let threads = 4;
  const buffer = (): Buffer => (scratch ??= Buffer.allocUnsafe(SCRATCH));

  async function readRange(fd: number, offset: number, length: number, id: number): Promise<number> {
    let done = 0;
    while (done < length) {
      if (cancelled.has(id)) throw { errno: 125, syscall: 'sendfile', aborted: true } satisfies NativeFailure;
      // A buffer per call: concurrent warm-ups must not share one mid-read.
      const buf = Buffer.allocUnsafe(Math.min(SCRATCH, length - done));
      const { bytesRead } = await read(fd, buf, 0, buf.length, offset + done).catch((e) => {
        throw failure(e, 'read');
      });
      if (bytesRead === 0) break;
      done += bytesRead;
      counters.fallbackReads++;
    }
    counters.warmedBytes += done;
    return done;
  }

  async function track<T>(id: number, work: () => Promise<T>): Promise<T> {
    running.add(id);
    try {
      return await work();
    } finally {
      running.delete(id);
      cancelled.delete(id);
    }
  }

  function statSync(fd: number, syscall: string): fs.Stats | NativeFailure {
    try {
      const st = fs.fstatSync(fd);
      return checkStat(st, syscall) ?? st;
    } catch (e) {
      return failure(e, syscall);
    }
  }

  const unknownResidency = (size: number, offset: number, length: number): NativeResidency => {
    const bytes = Math.max(0, Math.min(length < 0 ? Infinity : length, size - offset));
    const page = 4096;
    const pages = bytes === 0 ? 0 : Math.ceil((offset + bytes) / page) - Math.floor(offset / page);
    return { bytes, pages, resident: null, dirty: null, writeback: null, evicted: null, recentlyEvicted: null, source: 'unknown' };
  };

  return {
    warm(fd, offset, length, id) {
      return track(id, async () => {
        const st = await fstat(fd).catch((e) => Promise.reject(failure(e, 'sendfile')));
        const bad = checkStat(st, 'sendfile');
        if (bad) throw bad;
        return readRange(fd, offset, clamp(st.size, offset, length), id);
      });
    },
    warmSync(fd, offset, length) {
      const st = statSync(fd, 'sendfile');
      if (!(st instanceof fs.Stats)) return st;
      const total = clamp(st.size, offset, length);
      const buf = buffer();
      let done = 0;
      try {
        while (done < total) {
          const n = fs.readSync(fd, buf, 0, Math.min(SCRATCH, total - done), offset + done);
          if (n === 0) break;
          done += n;
          counters.fallbackReads++;
        }
      } catch (e) {
        return failure(e, 'read');
      }
      counters.warmedBytes += done;
      return done;
    },
    residency(fd, offset, length, id) {
      return track(id, async () => {
        const st = await fstat(fd).catch((e) => Promise.reject(failure(e, 'mincore')));
        const bad = checkStat(st, 'mincore');
        if (bad) throw bad;
        return unknownResidency(st.size, offset, length);
      });
    },
    residencySync(fd, offset, length) {
      const st = statSync(fd, 'mincore');
      if (!(st instanceof fs.Stats)) return st;
      return unknownResidency(st.size, offset, length);
    },
    advise(fd) {
      try {
        fs.fstatSync(fd);
      } catch (e) {
        return failure(e, 'posix_fadvise');
      }
      return undefined;
    },
    send(outFd, inFd, offset, length, id) {
      return track(id, async () => {
        const st = await fstat(inFd).catch((e) => Promise.reject(failure(e, 'sendfile')));
        const bad = checkStat(st, 'sendfile');
        if (bad) throw bad;
        const total = clamp(st.size, offset, length);
        let sent = 0;
        while (sent < total) {
          if (cancelled.has(id)) throw { errno: 125, syscall: 'sendfile', aborted: true, bytesSent: sent };
          const buf = Buffer.allocUnsafe(Math.min(SCRATCH, total - sent));
          const { bytesRead } = await read(inFd, buf, 0, buf.length, offset + sent).catch((e) => {
            throw { ...failure(e, 'read'), bytesSent: sent };
          });
          if (bytesRead === 0) break;
          let written = 0;
          while (written < bytesRead) {
            try {
              written += (await write(outFd, buf, written, bytesRead - written)).bytesWritten;
            } catch (e) {
              const f = failure(e, 'write');
              if (f.errno !== EAGAIN) throw { ...f, bytesSent: sent + written };
              await new Promise((resolve) => setTimeout(resolve, 1)); // a full non-blocking socket
            }
          }
          sent += bytesRead;
        }
        return sent;
      });
    },
    sendSync(outFd, inFd, offset, length) {
      const st = statSync(inFd, 'sendfile');
      if (!(st instanceof fs.Stats)) return st;
      const total = clamp(st.size, offset, length);
      const buf = buffer();
      let sent = 0;
      try {
        while (sent < total) {
          const n = fs.readSync(inFd, buf, 0, Math.min(SCRATCH, total - sent), offset + sent);
          if (n === 0) break;
          let written = 0;
          while (written < n) {
            try {
              written += fs.writeSync(outFd, buf, written, n - written);
            } catch (e) {
              if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
            }
          }
          sent += n;
        }
      } catch (e) {
        return { ...failure(e, 'sendfile'), bytesSent: sent };
      }
      return sent;
    },
    cancel(id) {
      if (running.has(id)) cancelled.add(id);
    },
    configure(t, c) {
      if (t > 0) threads = t;
      if (c > 0) chunkSize = c;
      return undefined;
    },
    stats(): NativeStats {
      return {
        warmedBytes: counters.warmedBytes,
        fastPathHits: 0,
        residentSkips: 0,
        sendfileChunks: 0,
        fallbackReads: counters.fallbackReads,
        directReopens: 0,
        queued: 0,
        active: running.size,
        waiting: 0,
        threads,
        chunkSize,
      };
    },
    capabilities() {
      return { cachestat: false, pageSize: 4096 };
    },
  };
}
