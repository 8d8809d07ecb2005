/**
 * Opening a path for reading through the binding, tied to the calling
 * thread's environment: shared by warmFile (./warm) and sendFile (./socket).
 * Nothing here is public API.
 */
import { binding, nextId } from './native';
import { invalidArgValue, isNativeFailure, systemError, type NativeFailure, type SystemError } from './errors';

/** A descriptor from {@link openForReading} and how to close it. @internal */
export interface OpenedFile {
  fd: number;
  /** Closes it, on the calling thread; once. */
  close(): void;
}

/**
 * Opens a path for reading through the binding (O_RDONLY, O_NONBLOCK,
 * O_NOCTTY, O_CLOEXEC), off the JS thread, tied to this environment (see
 * Binding.openFile). Nothing about the file is checked here. Errors are
 * Node's: `ENOENT: no such file or directory, open '/x'` with `path`; a path
 * with a NUL byte is Node's TypeError `ERR_INVALID_ARG_VALUE`. @internal
 */
export async function openForReading(path: string): Promise<OpenedFile> {
  if (path.includes('\0')) {
    throw invalidArgValue('path', path, 'must be a string, Uint8Array, or URL without null bytes');
  }
  const id = nextId();
  let fd: number;
  try {
    const started = binding.openFile(path, id);
    if (isNativeFailure(started)) throw started;
    fd = await started;
  } catch (err) {
    throw isNativeFailure(err) ? pathError(err, path) : err;
  }
  let open = true;
  return {
    fd,
    close: () => {
      if (open) binding.unpin(fd);
      open = false;
    },
  };
}

function pathError(failure: NativeFailure, path: string): SystemError & { path: string } {
  const err = systemError(failure) as SystemError & { path: string };
  err.message += ` '${path}'`;
  err.path = path;
  return err;
}
