/**
 * The portable fallback: the same calls as the native binding, made with
 * ordinary reads and writes. It serves platforms other than Linux, machines
 * where the addon failed to build or load, and PAGEWARM_FORCE_FALLBACK=1.
 *
 * - Warming reads the range into a scratch buffer that every warm-up reuses
 *   (the bytes are copied once and dropped).
 * - Residency is reported as `source: 'unknown'` with null counts: Node has no
 *   way to ask the kernel, and the fallback never guesses.
 * - Advice (and so `evict`) is checked like posix_fadvise checks it, then
 *   does nothing.
 * - Sending copies through a buffer of the job's own.
 *
 * Argument checks and errors match the native binding's: the descriptor is
 * checked on the calling thread (EBADF for a closed, write-only or O_PATH
 * descriptor, EISDIR, ESPIPE for pipes and sockets, EINVAL for character
 * devices) and the failure is returned, not thrown, exactly as native does.
 *
 * Like the native pool, at most `threads` reads run at once, one chunk each,
 * first come first served, so a small warm-up is not stuck behind a large
 * one. The reads themselves run on the libuv threadpool (there is no other
 * way to read off the JS thread in Node), which the native addon avoids.
 *
 * Async calls work on a private reopen of the descriptor (/proc/self/fd/N on
 * Linux, /dev/fd/N elsewhere) where the system allows it, so a JS close()
 * during the operation cannot redirect it to a reused descriptor number; the
 * reopen also drops O_DIRECT, as the native buffered reopen does. A warm-up
 * in a process out of descriptors fails with EMFILE before it starts, as the
 * native dup(2) does, rather than run on the caller's descriptor. The
 * destination of a send cannot be reopened (sockets): each write first checks
 * that its number still names the same socket or file, and a send whose
 * destination was closed under it fails with EBADF (native, working on its
 * own duplicate, would see EPIPE or ECONNRESET from a peer that went away).
 */
import * as fs from 'node:fs';
import { availableParallelism, constants as osConstants, endianness, release } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import type { Binding, NativeResidency, NativeStats } from '../core/binding';
import type { NativeFailure } from '../core/errors';
import { inside } from '../core/paths';

const E = osConstants.errno;
const SCRATCH = 1 << 20;
const isLinux = process.platform === 'linux';
// Linux open(2) flag bits that Node does not export (the same on x86, arm and arm64).
const O_PATH = 0o10000000;
const O_ACCMODE = 3;
/** openFile's flags, as native: O_NONBLOCK so a FIFO cannot hang the open (libuv adds O_CLOEXEC). */
const OPEN_READ = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);

/** The first thing a native call checks about a descriptor, and what it learns. */
interface FdInfo {
  /** Bytes a range can cover: the file size, or Infinity for a block device of unknown size. */
  size: number;
  /** Opened with O_DIRECT (Linux): reads must go through a buffered reopen. */
  direct: boolean;
}

function failure(err: unknown, syscall: string): NativeFailure {
  const e = err as NodeJS.ErrnoException;
  // Node refuses a negative descriptor (a closed FileHandle's fd is -1)
  // before the kernel sees it; the kernel, and so the native binding, says EBADF.
  if (e.errno === undefined && e.code === 'ERR_OUT_OF_RANGE') return { errno: E.EBADF, syscall };
  return { errno: Math.abs(e.errno ?? E.EIO), syscall };
}

function isFailure(value: unknown): value is NativeFailure {
  return typeof value === 'object' && value !== null && typeof (value as NativeFailure).errno === 'number';
}

// "pos:\t<up to 20 digits>\nflags:\t<up to 11 octal digits>\n" fits; the rest
// of fdinfo (mnt_id, ino, and for some files much more) is not needed.
const fdinfoHead = Buffer.alloc(128);

/**
 * The open flags of fd from /proc/self/fdinfo (Linux), or undefined where that
 * does not exist. One read of the head of the file: readFileSync reads to the
 * end in growing buffers, which made this a third of every fallback call.
 */
function openFlags(fd: number): number | undefined {
  if (!isLinux) return undefined;
  let info: number | undefined;
  try {
    info = fs.openSync(`/proc/self/fdinfo/${fd}`, fs.constants.O_RDONLY);
    const n = fs.readSync(info, fdinfoHead, 0, fdinfoHead.length, null);
    const match = /^flags:\s*([0-7]+)\n/m.exec(fdinfoHead.toString('latin1', 0, n));
    return match ? parseInt(match[1], 8) : undefined;
  } catch {
    return undefined;
  } finally {
    if (info !== undefined) fs.closeSync(info);
  }
}

/** Size in bytes of a block device (Linux sysfs), or Infinity when it cannot be told. */
function blockDeviceSize(fd: number): number {
  if (!isLinux) return Infinity;
  try {
    const rdev = fs.fstatSync(fd, { bigint: true }).rdev;
    const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
    const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
    const sectors = Number(fs.readFileSync(`/sys/dev/block/${major}:${minor}/size`, 'latin1').trim());
    return Number.isSafeInteger(sectors) ? sectors * 512 : Infinity;
  } catch {
    return Infinity;
  }
}

/**
 * What the native FileRef checks, in its order: an open, readable descriptor
 * (not write-only, not O_PATH) of a regular file or block device.
 */
function inspectFd(fd: number, syscall: string): FdInfo | NativeFailure {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch (e) {
    return failure(e, syscall);
  }
  const flags = openFlags(fd);
  if (flags !== undefined && ((flags & O_PATH) !== 0 || (flags & O_ACCMODE) === fs.constants.O_WRONLY)) {
    return { errno: E.EBADF, syscall };
  }
  if (st.isDirectory()) return { errno: E.EISDIR, syscall };
  if (st.isFIFO() || st.isSocket()) return { errno: E.ESPIPE, syscall };
  const direct = flags !== undefined && fs.constants.O_DIRECT !== undefined && (flags & fs.constants.O_DIRECT) !== 0;
  if (st.isFile()) return { size: st.size, direct };
  if (st.isBlockDevice()) return { size: blockDeviceSize(fd), direct };
  return { errno: E.EINVAL, syscall }; // character devices: no page cache
}

/**
 * A private descriptor for the same open file, read-only and buffered, or
 * undefined where the system will not give one (then the caller's is used).
 * Only called for regular files and block devices (opening a FIFO would block).
 */
function reopen(fd: number): number | undefined;
/**
 * With `syscall`: a process out of descriptors (EMFILE, ENFILE) is not a
 * system that "will not give one": that is returned as the failure the
 * native dup(2) reports, under `syscall`, so that the job is refused before
 * it starts instead of running on the caller's descriptor (where a close()
 * mid-flight could redirect it).
 */
function reopen(fd: number, syscall: string): number | undefined | NativeFailure;
function reopen(fd: number, syscall?: string): number | undefined | NativeFailure {
  const path = isLinux ? `/proc/self/fd/${fd}` : process.platform === 'win32' ? undefined : `/dev/fd/${fd}`;
  if (path === undefined) return undefined;
  try {
    return fs.openSync(path, fs.constants.O_RDONLY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (syscall !== undefined && (code === 'EMFILE' || code === 'ENFILE')) return failure(e, syscall);
    return undefined;
  }
}


/**
 * What posix_fadvise(2) checks about a descriptor before it acts, without
 * acting: EBADF for a closed or O_PATH descriptor, ESPIPE for a pipe. Any
 * other open descriptor is accepted (write-only ones, directories, sockets
 * and devices too: the kernel ignores advice it cannot use). The fallback's
 * advise() is this check alone; ./residency uses it for an empty range,
 * which posix_fadvise itself cannot express (its length 0 means "to the end
 * of the file"). @internal
 */
export function checkAdvisable(fd: number): NativeFailure | undefined {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch (e) {
    return failure(e, 'posix_fadvise');
  }
  const flags = openFlags(fd);
  if (flags !== undefined && (flags & O_PATH) !== 0) return { errno: E.EBADF, syscall: 'posix_fadvise' };
  if (st.isFIFO()) return { errno: E.ESPIPE, syscall: 'posix_fadvise' };
  return undefined;
}

/** Bytes of [offset, offset + length) inside a file of `size` bytes; length -1: to the end. */
function rangeLength(size: number, offset: number, length: number): number {
  const rest = Math.max(0, size - offset);
  return length < 0 ? rest : Math.min(length, rest);
}

/** The system page size: from the auxiliary vector on Linux, else the platform's usual one. */
function pageSize(): number {
  if (isLinux) {
    try {
      const auxv = fs.readFileSync('/proc/self/auxv');
      const wide = process.arch.endsWith('64');
      const step = wide ? 8 : 4;
      const le = endianness() === 'LE';
      const word = (at: number): number =>
        wide
          ? Number(le ? auxv.readBigUInt64LE(at) : auxv.readBigUInt64BE(at))
          : le
            ? auxv.readUInt32LE(at)
            : auxv.readUInt32BE(at);
      for (let at = 0; at + 2 * step <= auxv.length; at += 2 * step) {
        const key = word(at);
        if (key === 0) break; // AT_NULL
        if (key === 6) return word(at + step); // AT_PAGESZ
      }
    } catch {
      // fall through to the usual size
    }
  }
  return process.platform === 'darwin' && process.arch === 'arm64' ? 16384 : 4096;
}

/**
 * The syscall native residency calls name in their errors: cachestat(2) on
 * Linux >= 6.5, else mincore(2). The fallback calls neither, but names the
 * same one so that errors read the same in both modes.
 */
function residencySyscallName(): string {
  const [major, minor] = release().split('.').map((n) => parseInt(n, 10));
  return isLinux && (major > 6 || (major === 6 && minor >= 5)) ? 'cachestat' : 'mincore';
}

/** A send's destination as it was when the send began. */
interface Destination {
  fd: number;
  dev: number;
  ino: number;
  /** O_NONBLOCK (Linux): writes never block, so they can run on the JS thread. */
  nonBlocking: boolean;
}

/** The native pool's default size: one per CPU, at least 2, at most 4 (see src/pool.cc). */
function defaultThreads(): number {
  return Math.min(4, Math.max(2, availableParallelism()));
}

/** A counting semaphore, first come first served: the fallback's "threads". */
class Slots {
  private free: number;
  private readonly waiters: Array<() => void> = [];
  running = 0;

  constructor(private size: number) {
    this.free = size;
  }

  get queued(): number {
    return this.waiters.length;
  }

  acquire(): Promise<void> | undefined {
    if (this.free > 0 && this.waiters.length === 0) {
      this.free--;
      this.running++;
      return undefined;
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    this.running--;
    this.free++;
    this.wake();
  }

  resize(size: number): void {
    this.free += size - this.size;
    this.size = size;
    this.wake();
  }

  private wake(): void {
    while (this.free > 0 && this.waiters.length > 0) {
      this.free--;
      this.running++;
      this.waiters.shift()!();
    }
  }
}

/** Sleeps the calling thread (sendSync on a full non-blocking destination). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * A send's write(2) to a socket whose peer reset it raises SIGPIPE. Node
 * ignores SIGPIPE, but a program can restore its default (fatal) disposition
 * by adding and then removing a listener. The native binding blocks SIGPIPE
 * on its own threads for each send; JavaScript cannot, so the fallback keeps
 * a no-op listener on the main thread: SIGPIPE stays caught for the whole
 * process (workers included) and the write fails with EPIPE. (A worker cannot
 * install one; a process that loads pagewarm only in workers keeps whatever
 * disposition it has.)
 */
function keepSigpipeCaught(): void {
  if (process.platform === 'win32') return; // no SIGPIPE
  if (!isMainThread || process.listeners('SIGPIPE').includes(ignoreSigpipe)) return;
  process.on('SIGPIPE', ignoreSigpipe);
}

function ignoreSigpipe(): void {}

/** The fallback binding. One per thread, like the native per-environment state. */
export function fallbackBinding(): Binding {
  keepSigpipeCaught();
  const counters = { warmedBytes: 0, fallbackReads: 0, directReopens: 0 };
  let waiting = 0; // sends backing off from a full non-blocking destination
  const cancelled = new Set<number>();
  const running = new Set<number>();
  let chunkSize = 8 << 20;
  let threads = defaultThreads();
  const slots = new Slots(threads);
  const page = pageSize();
  const residencySyscall = residencySyscallName();
  // Private descriptors of jobs in flight. A worker terminated mid-job never
  // runs the job's finally, but it does emit 'exit': close them there.
  const owned = new Set<number>();
  let exitHook = false;
  const own = (fd: number): number => {
    owned.add(fd);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const o of owned) fs.closeSync(o);
        owned.clear();
      });
    }
    return fd;
  };
  const disown = (fd: number | undefined): void => {
    if (fd === undefined || !owned.delete(fd)) return;
    fs.closeSync(fd); // at once: fd counts are exact when the promise settles
  };
  let scratch: Buffer | undefined;
  // Warm-ups drop what they read, so they can all read into the same buffer.
  const warmBuffer = (): Buffer => (scratch ??= Buffer.allocUnsafe(SCRATCH));
  const readSize = (): number => Math.min(chunkSize, SCRATCH);

  const aborted = (syscall: string, bytesSent?: number): NativeFailure =>
    bytesSent === undefined
      ? { errno: E.ECANCELED, syscall, aborted: true }
      : { errno: E.ECANCELED, syscall, aborted: true, bytesSent };

  /** One chunk read in a slot. */
  async function readChunk(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
    await slots.acquire();
    try {
      const bytesRead = await new Promise<number>((resolve, reject) =>
        fs.read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))),
      );
      return bytesRead;
    } finally {
      slots.release();
    }
  }

  /** Runs an async job on a private descriptor, tracked for cancel(). */
  function start<T>(id: number, fd: number, info: FdInfo, work: (fd: number) => Promise<T>, reopened = reopen(fd)): Promise<T> {
    const mine = reopened === undefined ? undefined : own(reopened);
    if (mine !== undefined && info.direct) counters.directReopens++;
    running.add(id);
    return (async () => {
      try {
        return await work(mine ?? fd);
      } finally {
        disown(mine);
        running.delete(id);
        cancelled.delete(id);
      }
    })();
  }

  /** A private buffered descriptor for a sync call on an O_DIRECT fd (else the caller's). */
  function syncFd(fd: number, info: FdInfo): { fd: number; reopened?: number } {
    if (!info.direct) return { fd };
    const reopened = reopen(fd);
    if (reopened === undefined) return { fd };
    counters.directReopens++;
    return { fd: reopened, reopened };
  }

  function unknownResidency(info: FdInfo, offset: number, length: number): NativeResidency {
    const size = Number.isFinite(info.size) ? info.size : offset + Math.max(0, length);
    const bytes = rangeLength(size, offset, length);
    const pages = bytes === 0 ? 0 : Math.ceil((offset + bytes) / page) - Math.floor(offset / page);
    return { bytes, pages, resident: null, dirty: null, writeback: null, evicted: null, recentlyEvicted: null, source: 'unknown' };
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
   * between; others through the threadpool.
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

  return {
    warm(fd, offset, length, id) {
      const info = inspectFd(fd, 'sendfile');
      if (isFailure(info)) return info;
      const total = rangeLength(info.size, offset, length);
      if (total === 0) return 0;
      // Out of descriptors: EMFILE before any work, as the native dup(2) fails.
      const reopened = reopen(fd, 'sendfile');
      if (isFailure(reopened)) return reopened;
      return start(id, fd, info, async (src) => {
        const buf = warmBuffer();
        let done = 0;
        while (done < total) {
          if (cancelled.has(id)) throw aborted('sendfile');
          let n: number;
          try {
            n = await readChunk(src, buf, Math.min(readSize(), total - done), offset + done);
          } catch (e) {
            throw failure(e, 'read');
          }
          if (n === 0) break; // end of file (it may have shrunk)
          done += n;
          counters.fallbackReads++;
          counters.warmedBytes += n;
        }
        return done;
      }, reopened);
    },

    warmSync(fd, offset, length) {
      const info = inspectFd(fd, 'sendfile');
      if (isFailure(info)) return info;
      const total = rangeLength(info.size, offset, length);
      const { fd: src, reopened } = syncFd(fd, info);
      const buf = warmBuffer();
      let done = 0;
      try {
        while (done < total) {
          const n = fs.readSync(src, buf, 0, Math.min(readSize(), total - done), offset + done);
          if (n === 0) break;
          done += n;
          counters.fallbackReads++;
          counters.warmedBytes += n;
        }
      } catch (e) {
        return failure(e, 'read');
      } finally {
        if (reopened !== undefined) fs.closeSync(reopened);
      }
      return done;
    },

    residency(fd, offset, length, id) {
      const info = inspectFd(fd, residencySyscall);
      if (isFailure(info)) return info;
      running.add(id);
      return Promise.resolve().then(() => {
        running.delete(id);
        const wasCancelled = cancelled.delete(id);
        if (wasCancelled) throw aborted(residencySyscall);
        return unknownResidency(info, offset, length);
      });
    },

    residencySync(fd, offset, length) {
      const info = inspectFd(fd, residencySyscall);
      if (isFailure(info)) return info;
      return unknownResidency(info, offset, length);
    },

    readCached() {
      // Without preadv2(RWF_NOWAIT) nothing says whether a read would wait
      // for the disk: never read on the caller's thread.
      return { errno: E.EAGAIN, syscall: 'preadv2' };
    },

    revalidate(path, fd, realRoot, out) {
      let st: fs.Stats | undefined;
      try {
        st = fs.statSync(path, { throwIfNoEntry: false });
      } catch (e) {
        return failure(e, 'stat');
      }
      if (!st) return { errno: E.ENOENT, syscall: 'stat' };
      out[0] = st.dev;
      out[1] = st.ino;
      out[2] = st.size;
      out[3] = st.mtimeMs;
      out[4] = st.isFile() ? 1 : 0;
      if (realRoot === null) return 0;
      if (process.platform !== 'linux') return { errno: E.ENOSYS, syscall: 'readlink' }; // no name for an open descriptor: not confirmed
      let real: string;
      try {
        real = fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch (e) {
        return failure(e, 'readlink');
      }
      return inside(real, realRoot) ? 0 : 1;
    },

    advise(fd) {
      return checkAdvisable(fd);
    },

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
      return start(id, inFd, info, async (src) => {
        const buf = Buffer.allocUnsafe(Math.min(readSize(), total)); // this job's own: its bytes matter
        let sent = 0;
        let backoff = 1;
        while (sent < total) {
          if (cancelled.has(id)) throw aborted('sendfile', sent);
          let n: number;
          try {
            n = await readChunk(src, buf, Math.min(buf.length, total - sent), offset + sent);
          } catch (e) {
            throw { ...failure(e, 'sendfile'), bytesSent: sent };
          }
          if (n === 0) break;
          let written = 0;
          while (written < n) {
            if (cancelled.has(id)) throw aborted('sendfile', sent + written);
            try {
              written += await writeOut(out, buf, written, n - written);
              backoff = 1;
            } catch (e) {
              const f = e as NativeFailure;
              if (f.errno !== E.EAGAIN && f.errno !== E.EWOULDBLOCK) throw { ...f, bytesSent: sent + written };
              // A full non-blocking destination: no poller here, so back off and retry.
              waiting++;
              try {
                await new Promise((resolve) => setTimeout(resolve, backoff));
              } finally {
                waiting--;
              }
              backoff = Math.min(backoff * 2, 50);
            }
          }
          sent += n;
        }
        return sent;
      }, reopened);
    },

    sendSync(outFd, inFd, offset, length) {
      const bad = inspectOut(outFd);
      if (isFailure(bad)) return bad;
      const info = inspectFd(inFd, 'sendfile');
      if (isFailure(info)) return info;
      const total = rangeLength(info.size, offset, length);
      const { fd: src, reopened } = syncFd(inFd, info);
      const buf = Buffer.allocUnsafe(Math.max(1, Math.min(readSize(), total)));
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

    openFile(path) {
      // fs.open, not fs.promises.open: a worker terminated while the open is
      // in flight closes the descriptor fs.open returns, while
      // fs.promises.open's would leak. Once opened it is owned: closed by
      // unpin() or by the 'exit' hook of a terminated worker.
      return new Promise<number>((resolve, reject) => {
        try {
          fs.open(path, OPEN_READ, (err, fd) => (err ? reject(failure(err, 'open')) : resolve(own(fd))));
        } catch (e) {
          reject(failure(e, 'open'));
        }
      });
    },

    unpin(fd) {
      disown(fd);
    },

    cancel(id) {
      if (running.has(id)) cancelled.add(id);
    },

    configure(t, c) {
      if (t > 0) {
        threads = t;
        slots.resize(t);
      }
      if (c > 0) chunkSize = c;
      return undefined;
    },

    chunkSize(): number {
      return chunkSize;
    },

    stats(): NativeStats {
      return {
        warmedBytes: counters.warmedBytes,
        fastPathHits: 0,
        inlineSends: 0,
        sendfileChunks: 0,
        fallbackReads: counters.fallbackReads,
        directReopens: counters.directReopens,
        queued: slots.queued,
        active: slots.running,
        waiting,
        threads,
        configuredThreads: threads,
        chunkSize,
      };
    },

    capabilities() {
      return { cachestat: false, pageSize: page, zeroCopySend: false, nowaitReads: false };
    },
  };
}
