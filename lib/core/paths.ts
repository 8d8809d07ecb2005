/**
 * Confinement of real paths to a root, shared by serveFile (lib/http/)
 * and the fallback's revalidate (lib/fallback/). Nothing here is public API.
 */
import * as fs from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { isAbsolute, sep } from 'node:path';

/** Whether the real path `real` is `realRoot` itself or lies below it. */
export function inside(real: string, realRoot: string): boolean {
  if (!isAbsolute(real)) return false; // "(deleted)" names, anonymous inodes
  return real === realRoot || real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep);
}

/** Whether `/proc/self/fd/N` names open descriptors here (Linux; other systems with a Linux-style /proc). */
let procFd: boolean | undefined;
function hasProcFd(): boolean {
  if (procFd === undefined) {
    try {
      procFd = fs.readlinkSync('/proc/self/fd/0').length >= 0;
    } catch (err) {
      // A closed stdin is still proof that the directory works.
      procFd = (err as NodeJS.ErrnoException).code === 'ENOENT' && fs.existsSync('/proc/self/fd');
    }
  }
  return procFd;
}

/**
 * The real path of the file open on `fd` (opened by the name `name`), or
 * undefined when it cannot be known for certain.
 *
 * With `/proc/self/fd` (Linux) it is the kernel's own name for the opened
 * file: no race with a name swapped after the open. Elsewhere, `name` is
 * resolved with realpath and the result is accepted only if it names the
 * very file that is open (same device and inode as fstat of `fd`): a
 * symlink swapped between the open and the check then gives undefined, never
 * the location of another file.
 *
 * @internal
 */
export async function descriptorRealPath(fd: number, name: string, viaProc = hasProcFd()): Promise<string | undefined> {
  if (viaProc) {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return undefined;
    }
  }
  try {
    const real = await realpath(name);
    const [named, opened] = await Promise.all([stat(real, { bigint: true }), fstatBig(fd)]);
    return named.dev === opened.dev && named.ino === opened.ino ? real : undefined;
  } catch {
    return undefined;
  }
}

function fstatBig(fd: number): Promise<fs.BigIntStats> {
  return new Promise((resolve, reject) => fs.fstat(fd, { bigint: true }, (err, st) => (err ? reject(err) : resolve(st))));
}
