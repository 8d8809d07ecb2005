/**
 * A disk that is slow per read: bench/lib/slowfs.py, a pass-through FUSE
 * file system that makes every page-cache miss wait an access time, a queue
 * slot and its share of a bus (e.g. 5 ms, 4 at once, 50 MB/s), mounted over
 * a directory of benchmark files. On these VMs the virtual disk answers a
 * random read in 0.1-0.2 ms and a blkio throttle only queues reads beyond a
 * rate, so a miss costs less than a service's own latency floor; through
 * slowfs it costs what it does on a spinning disk or a cloud volume.
 *
 * Needs /dev/fuse, root (to mount) and Debian's python3-fusepy (`npm run
 * bench:setup`); {@link mountSlowFs} says why not when any is missing, and
 * proves the mount slow (a cold 4 KiB read takes at least the access time)
 * before it is used.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import * as pw from '../../lib/index';
import { atExit, nowMs, sleep, TMP_DIR } from './common';

const PYTHON = '/usr/bin/python3';
const SCRIPT = join(__dirname, 'slowfs.py');

/** The disk slowfs imitates. */
export interface SlowFsDisk {
  /** Access time of every read, ms. */
  latencyMs: number;
  /** Bytes a second over all reads. */
  bytesPerSecond: number;
  /** Reads served at once. */
  depth: number;
}

/** What slowfs was asked to read: in all, and per requesting process id. */
export interface SlowFsStats {
  reads: number;
  bytes: number;
  byPid: Record<string, { reads: number; bytes: number }>;
}

/** A mounted slowfs. */
export interface SlowFs {
  /** Where the backing directory's files appear, slow. */
  mountpoint: string;
  disk: SlowFsDisk;
  /** What the probe measured: a cold 4 KiB read's time, ms. */
  probeMs: number;
  stats(): SlowFsStats;
  unmount(): void;
}

function mounted(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
}

/** Mounts slowfs over `backing` (which must hold a regular file to probe with), or says why it cannot. */
export async function mountSlowFs(backing: string, disk: SlowFsDisk, probeFile: string): Promise<SlowFs | string> {
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  if (process.getuid?.() !== 0) return 'mounting FUSE needs root here';
  if (spawnSync(PYTHON, ['-c', 'import fusepy']).status !== 0) return 'no python3-fusepy (npm run bench:setup installs it)';
  const mountpoint = join(TMP_DIR, `pagewarm-slowfs-${process.pid}`);
  const statsPath = `${mountpoint}.stats.json`;
  mkdirSync(mountpoint, { recursive: true });
  const child: ChildProcess = spawn(
    PYTHON,
    [SCRIPT, backing, mountpoint, String(disk.latencyMs), String(disk.bytesPerSecond), String(disk.depth), statsPath],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const unmount = (): void => {
    if (mounted(mountpoint)) spawnSync('umount', ['-l', mountpoint]);
    if (!exited) child.kill('SIGTERM');
    try {
      rmdirSync(mountpoint);
    } catch {
      // still busy: left for the next run
    }
  };
  atExit(unmount);
  const t0 = nowMs();
  while (!mounted(mountpoint) || !existsSync(statsPath)) {
    if (exited || nowMs() - t0 > 10_000) {
      unmount();
      return `slowfs did not mount: ${stderr.trim().split('\n').pop() ?? 'timed out'}`;
    }
    await sleep(20);
  }
  // The probe: a cold 4 KiB read through the mount must take the access time.
  const fd = openSync(join(mountpoint, probeFile), 'r');
  let probeMs = 0;
  try {
    pw.evict(fd);
    const t = nowMs();
    readSync(fd, Buffer.alloc(4096), 0, 4096, 0);
    probeMs = nowMs() - t;
  } finally {
    closeSync(fd);
  }
  if (probeMs < 0.8 * disk.latencyMs) {
    unmount();
    return `slowfs mounted but a cold read took ${probeMs.toFixed(2)} ms (< ${disk.latencyMs} ms): not slow`;
  }
  return {
    mountpoint,
    disk,
    probeMs,
    stats: () => JSON.parse(readFileSync(statsPath, 'utf8')) as SlowFsStats,
    unmount,
  };
}
