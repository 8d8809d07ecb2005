/**
 * The fallback's two JS-thread calls for serveFile's open-file cache (native:
 * src/bind_cached.cc). Not public API.
 */
import * as fs from 'node:fs';
import { constants as osConstants } from 'node:os';
import type { Binding } from '../core/binding';
import { failure } from '../core/descriptor';
import { inside } from '../core/paths';

const E = osConstants.errno;

/**
 * The binding's readCached and revalidate. readCached always answers EAGAIN
 * (without preadv2(RWF_NOWAIT) nothing says whether a read would wait for
 * the disk). revalidate stats the path on the calling thread; the "inside
 * realRoot" proof needs /proc/self/fd (Linux), and elsewhere fails with
 * ENOSYS (not confirmed). Failures are { errno, syscall } like every call's.
 */
export function cachedCalls(): Pick<Binding, 'readCached' | 'revalidate'> {
  return {
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
  };
}
