/**
 * What a descriptor is, asked the way the kernel's own checks ask it: its
 * open flags (from /proc/self/fdinfo on Linux), the failure a Node fs error
 * stands for, and what posix_fadvise(2) checks before it acts. Used by
 * `evict` in both modes and by the portable fallback. Nothing here is public
 * API.
 */
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { NativeFailure } from './errors';

const E = osConstants.errno;
const isLinux = process.platform === 'linux';

// Linux open(2) flag bits that Node does not export (the same on x86, arm and arm64).
/** O_PATH: a descriptor that names a file but cannot read or write it. @internal */
export const O_PATH = 0o10000000;
/** The access-mode bits of the open flags (O_RDONLY, O_WRONLY or O_RDWR). @internal */
export const O_ACCMODE = 3;

/**
 * What the native binding would report for a Node fs error `err` raised by
 * the call named `syscall`: its positive errno (EIO when it has none). Node
 * refuses a negative descriptor (a closed FileHandle's fd is -1) before the
 * kernel sees it, with ERR_OUT_OF_RANGE; the kernel, and so the native
 * binding, says EBADF. @internal
 */
export function failure(err: unknown, syscall: string): NativeFailure {
  const e = err as NodeJS.ErrnoException;
  if (e.errno === undefined && e.code === 'ERR_OUT_OF_RANGE') return { errno: E.EBADF, syscall };
  return { errno: Math.abs(e.errno ?? E.EIO), syscall };
}

/**
 * The open flags of fd from /proc/self/fdinfo (Linux), or undefined where that
 * does not exist or cannot be read. One read of the head of the file, on the
 * calling thread: readFileSync reads to the end in growing buffers, which
 * made this a third of every fallback call. @internal
 */
export function openFlags(fd: number): number | undefined {
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

/**
 * What posix_fadvise(2) checks about a descriptor before it acts, without
 * acting: EBADF for a closed or O_PATH descriptor, ESPIPE for a pipe. Any
 * other open descriptor is accepted (write-only ones, directories, sockets
 * and devices too: the kernel ignores advice it cannot use). The fallback's
 * advise() is this check alone; ./residency uses it for an empty range,
 * which posix_fadvise itself cannot express (its length 0 means "to the end
 * of the file"). Runs on the calling thread. @internal
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

// "pos:\t<up to 20 digits>\nflags:\t<up to 11 octal digits>\n" fits; the rest
// of fdinfo (mnt_id, ino, and for some files much more) is not needed.
const fdinfoHead = Buffer.alloc(128);
