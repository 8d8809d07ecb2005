/**
 * The fallback's two JS-thread calls for serveFile's open-file cache (native:
 * src/bind_cached.cc). Not public API.
 */
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Binding } from '../core/binding';
import { inside } from '../core/paths';

const E = osConstants.errno;

/**
 * The binding's readCached and revalidate. readCached always answers EAGAIN
 * (without preadv2(RWF_NOWAIT) nothing says whether a read would wait for
 * the disk). revalidate stats the path on the calling thread; the "inside
 * realRoot" proof needs /proc/self/fd (Linux), and elsewhere answers -ENOSYS
 * (not confirmed).
 */
export function cachedCalls(): Pick<Binding, 'readCached' | 'revalidate'> {
  return {
    readCached() {
      // Without preadv2(RWF_NOWAIT) nothing says whether a read would wait
      // for the disk: never read on the caller's thread.
      return { errno: E.EAGAIN, syscall: 'preadv2' };
    },

    revalidate(path, fd, realRoot, out) {
      const negErrno = (e: unknown): number => -Math.abs((e as NodeJS.ErrnoException).errno ?? E.EIO);
      let st: fs.Stats | undefined;
      try {
        st = fs.statSync(path, { throwIfNoEntry: false });
      } catch (e) {
        return negErrno(e);
      }
      if (!st) return -E.ENOENT;
      out[0] = st.dev;
      out[1] = st.ino;
      out[2] = st.size;
      out[3] = st.mtimeMs;
      out[4] = st.isFile() ? 1 : 0;
      if (realRoot === null) return 0;
      if (process.platform !== 'linux') return -E.ENOSYS; // no name for an open descriptor: not confirmed
      let real: string;
      try {
        real = fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch (e) {
        return negErrno(e);
      }
      return inside(real, realRoot) ? 0 : 1;
    },
  };
}
