/**
 * Shared test helpers: scratch files, page-cache state from the outside
 * (fincore), open descriptor counts, and a simulated slow disk.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** A fresh scratch directory, removed when the process exits. */
export function scratchDir(prefix = 'pagewarm-test-'): string {
  const dir = fs.mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `size` bytes of random data (written in 8 MiB pieces) and fsyncs, so eviction works. */
export function makeFile(path: string, size: number): string {
  const fd = fs.openSync(path, 'w');
  const piece = randomBytes(Math.min(size, 8 << 20));
  for (let done = 0; done < size; ) {
    const n = Math.min(piece.length, size - done);
    done += fs.writeSync(fd, piece, 0, n, done);
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  return path;
}

/** A sparse file of `size` bytes with `data` written at each given offset. */
export function makeSparseFile(path: string, size: number, writes: Array<[number, Buffer]> = []): string {
  const fd = fs.openSync(path, 'w');
  fs.ftruncateSync(fd, size);
  for (const [offset, data] of writes) fs.writeSync(fd, data, 0, data.length, offset);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  return path;
}

/** Resident bytes of a file as util-linux fincore(1) reports them. */
export function fincoreBytes(path: string): number {
  const out = execFileSync('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'RES', path], { encoding: 'utf8' });
  return Number(out.trim());
}

/** Open descriptors of this process. */
export function openFdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** A simulated slow disk for this whole process (all threads), where cgroup v1 blkio allows it. */
export interface SlowDisk {
  /** How the test ran, for t.comment(). */
  mode: string;
  throttled: boolean;
  restore(): void;
}

const BLKIO = '/sys/fs/cgroup/blkio';

function deviceOf(path: string): string {
  const st = fs.statSync(path);
  // Linux dev_t: major in bits 8-19 (and 32+), minor in 0-7 and 20-31.
  const dev = BigInt(st.dev);
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  return `${major}:${minor}`;
}

/** Thread ids of this process whose name starts with `prefix` (pagewarm's threads are pagewarm-N). */
export function threadIds(prefix: string): number[] {
  return fs
    .readdirSync('/proc/self/task')
    .filter((tid) => fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith(prefix))
    .map(Number);
}

/**
 * Puts this process (or, with `only`, just those threads) into a blkio
 * cgroup that reads the disk holding `path` at `bytesPerSecond`. Falls back
 * to "unthrottled" where that is impossible.
 *
 * Throttling only pagewarm's threads keeps the main thread's own page faults
 * (these VMs page idle code out in the background) out of the throttle.
 */
export function slowDisk(path: string, bytesPerSecond: number, only?: number[]): SlowDisk {
  const unthrottled = (why: string): SlowDisk => ({ mode: `unthrottled (${why})`, throttled: false, restore() {} });
  if (!fs.existsSync(join(BLKIO, 'blkio.throttle.read_bps_device'))) return unthrottled('no cgroup v1 blkio');
  const group = join(BLKIO, `pagewarm-test-${process.pid}`);
  try {
    fs.mkdirSync(group, { recursive: true });
    const candidates = [deviceOf(path)];
    try {
      // A partition's parent disk, where the throttle may have to go instead.
      const parent = fs.realpathSync(`/sys/dev/block/${candidates[0]}/..`);
      const devFile = join(parent, 'dev');
      if (fs.existsSync(devFile)) candidates.push(fs.readFileSync(devFile, 'utf8').trim());
    } catch {
      /* no parent disk */
    }
    let device: string | undefined;
    for (const d of candidates) {
      try {
        fs.writeFileSync(join(group, 'blkio.throttle.read_bps_device'), `${d} ${bytesPerSecond}`);
        device = d;
        break;
      } catch {
        /* try the next */
      }
    }
    if (!device) {
      fs.rmdirSync(group);
      return unthrottled('the throttle file refused the device');
    }
    if (only) for (const tid of only) fs.writeFileSync(join(group, 'tasks'), String(tid));
    else fs.writeFileSync(join(group, 'cgroup.procs'), String(process.pid));
    let restored = false;
    const restore = (): void => {
      if (restored) return;
      restored = true;
      try {
        if (only) for (const tid of only) fs.writeFileSync(join(BLKIO, 'tasks'), String(tid));
        else fs.writeFileSync(join(BLKIO, 'cgroup.procs'), String(process.pid));
        fs.rmdirSync(group);
      } catch {
        /* best effort at exit */
      }
    };
    process.on('exit', restore);
    const who = only ? `${only.length} threads` : 'the whole process';
    return { mode: `throttled to ${(bytesPerSecond / 1e6).toFixed(0)} MB/s on ${device} for ${who} (cgroup v1 blkio)`, throttled: true, restore };
  } catch (err) {
    try {
      fs.rmdirSync(group);
    } catch {
      /* not created */
    }
    return unthrottled((err as Error).message);
  }
}

/** Evicts a whole file through a fresh descriptor. */
export function evictPath(path: string): void {
  const fd = fs.openSync(path, 'r');
  try {
    // posix_fadvise through pagewarm would make this helper depend on the code under test.
    execFileSync('python3', ['-c', `import os; os.posix_fadvise(${0}, 0, 0, os.POSIX_FADV_DONTNEED)`], { stdio: [fd, 'ignore', 'inherit'] });
  } finally {
    fs.closeSync(fd);
  }
}
