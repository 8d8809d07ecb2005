/**
 * The fallback's checks of a source descriptor, made as the native FileRef
 * makes them (src/file_ref.cc), and its private reopen of one. All of it runs
 * on the calling thread.
 */
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { NativeFailure } from '../core/errors';
import { failure, openFlags, O_ACCMODE, O_PATH } from '../core/descriptor';

const E = osConstants.errno;
const isLinux = process.platform === 'linux';

/** The first thing a native call checks about a descriptor, and what it learns. */
export interface FdInfo {
  /** Bytes a range can cover: the file size, or Infinity for a block device of unknown size. */
  size: number;
  /** Opened with O_DIRECT (Linux): reads must go through a buffered reopen. */
  direct: boolean;
}

/**
 * What the native FileRef checks, in its order: an open, readable descriptor
 * (not write-only, not O_PATH) of a regular file or block device. Failures
 * are returned under `syscall`: EBADF (closed, write-only, O_PATH), EISDIR,
 * ESPIPE (pipe, socket), EINVAL (character device: no page cache).
 */
export function inspectFd(fd: number, syscall: string): FdInfo | NativeFailure {
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

/** True for a NativeFailure (an object with a numeric errno), false for any result. */
export function isFailure(value: unknown): value is NativeFailure {
  return typeof value === 'object' && value !== null && typeof (value as NativeFailure).errno === 'number';
}

/** Bytes of [offset, offset + length) inside a file of `size` bytes; length -1: to the end. */
export function rangeLength(size: number, offset: number, length: number): number {
  const rest = Math.max(0, size - offset);
  return length < 0 ? rest : Math.min(length, rest);
}

/**
 * A private descriptor for the same open file, read-only and buffered, or
 * undefined where the system will not give one (then the caller's is used).
 * It is /proc/self/fd/N reopened on Linux, /dev/fd/N elsewhere (none on
 * Windows), so it also drops O_DIRECT, as the native buffered reopen does.
 * Only called for regular files and block devices (opening a FIFO would block).
 */
export function reopen(fd: number): number | undefined;
/**
 * With `syscall`: a process out of descriptors (EMFILE, ENFILE) is not a
 * system that "will not give one": that is returned as the failure the
 * native dup(2) reports, under `syscall`, so that the job is refused before
 * it starts instead of running on the caller's descriptor (where a close()
 * mid-flight could redirect it).
 */
export function reopen(fd: number, syscall: string): number | undefined | NativeFailure;
export function reopen(fd: number, syscall?: string): number | undefined | NativeFailure {
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
