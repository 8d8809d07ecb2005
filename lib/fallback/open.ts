/**
 * The descriptors a fallback binding owns: those openFile() returned (until
 * unpin) and the private reopens of jobs in flight. They belong to the
 * binding's thread (the main thread or a worker): a worker terminated
 * mid-job never runs the job's finally, but it does emit 'exit', where they
 * are closed.
 */
import * as fs from 'node:fs';
import type { Binding } from '../core/binding';
import { failure } from '../core/descriptor';

/** openFile's flags, as native: O_NONBLOCK so a FIFO cannot hang the open (libuv adds O_CLOEXEC). */
const OPEN_READ = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);

/** The descriptors one binding owns, closed by disown() or at the thread's 'exit'. */
export class OwnedDescriptors {
  private readonly owned = new Set<number>();
  private exitHook = false;

  /** Takes `fd` into the set (installing the 'exit' hook once) and returns it. */
  own(fd: number): number {
    this.owned.add(fd);
    if (!this.exitHook) {
      this.exitHook = true;
      process.once('exit', () => {
        for (const o of this.owned) fs.closeSync(o);
        this.owned.clear();
      });
    }
    return fd;
  }

  /**
   * Closes `fd` at once if it is owned (so descriptor counts are exact when
   * the job's promise settles); undefined and any other number are ignored.
   */
  disown(fd: number | undefined): void {
    if (fd === undefined || !this.owned.delete(fd)) return;
    fs.closeSync(fd);
  }
}

/**
 * The binding's openFile and unpin: `fs.open` on the libuv pool, the
 * descriptor owned until unpin(fd). Rejects with `{ errno, syscall: 'open' }`.
 */
export function openCalls(owned: OwnedDescriptors): Pick<Binding, 'openFile' | 'unpin'> {
  return {
    openFile(path) {
      // fs.open, not fs.promises.open: a worker terminated while the open is
      // in flight closes the descriptor fs.open returns, while
      // fs.promises.open's would leak. Once opened it is owned: closed by
      // unpin() or by the 'exit' hook of a terminated worker.
      return new Promise<number>((resolve, reject) => {
        try {
          fs.open(path, OPEN_READ, (err, fd) => (err ? reject(failure(err, 'open')) : resolve(owned.own(fd))));
        } catch (e) {
          reject(failure(e, 'open'));
        }
      });
    },

    unpin(fd) {
      owned.disown(fd);
    },
  };
}
