/**
 * Where sendFile's bytes come from: a path opened on pagewarm's threads, or
 * a caller's descriptor pinned (duplicated, tied to this environment) before
 * the call returns. Not public API.
 */
import * as fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { binding } from '../core/native';
import { openForReading } from '../core/open';
import { invalidArgType, isNativeFailure, systemError, type NativeFailure } from '../core/errors';
import { toFd } from '../core/validate';

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
