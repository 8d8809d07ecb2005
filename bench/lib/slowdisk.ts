/**
 * The slow-disk harness: a cgroup v1 blkio throttle on the disk that holds
 * the benchmark files (e.g. 50 MB/s of reads), verified by measuring cold
 * buffered reads inside and outside it, and removed again at exit.
 *
 * A throttle only counts when it demonstrably slows cold reads here: the
 * probe reads an evicted file in this process, once inside the cgroup and once
 * outside, and the throttled mode is only offered when the rate inside is near
 * the limit and well below the rate outside. Benchmarks print which mode ran:
 * "throttled 50 MB/s" or "unthrottled".
 */
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, realpathSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { atExit, evictPath, makeFile, MiB, nowMs, removeFile, TMP_DIR, type Flags } from './common';

const BLKIO = '/sys/fs/cgroup/blkio';
const PREFIX = 'pagewarm-bench-';

/** "major:minor" of the whole disk under `path` (partitions resolve to their disk). */
export function diskDevice(path: string): string {
  const dev = statSync(path).dev;
  // glibc's gnu_dev_major / gnu_dev_minor
  const major = ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
  const minor = (dev & 0xff) | ((dev >>> 12) & 0xfff00);
  let id = `${major}:${minor}`;
  const sys = realpathSync(`/sys/dev/block/${id}`);
  if (existsSync(join(sys, 'partition'))) id = readFileSync(join(sys, '..', 'dev'), 'utf8').trim();
  return id;
}

const live = new Set<Throttle>();

function writeFile(path: string, data: string): void {
  writeFileSync(path, data);
}

/** A blkio cgroup with a read bandwidth limit on one disk. */
export class Throttle {
  readonly path: string;
  readonly device: string;
  readonly bps: number;

  private constructor(path: string, device: string, bps: number) {
    this.path = path;
    this.device = device;
    this.bps = bps;
  }

  /** Creates the cgroup, or returns why it cannot. */
  static create(bps: number, filesDir = TMP_DIR): Throttle | string {
    if (!existsSync(join(BLKIO, 'blkio.throttle.read_bps_device'))) return 'no cgroup v1 blkio controller at /sys/fs/cgroup/blkio';
    removeStale();
    let device: string;
    try {
      device = diskDevice(filesDir);
    } catch (err) {
      return `cannot find the disk under ${filesDir}: ${(err as Error).message}`;
    }
    const path = join(BLKIO, `${PREFIX}${process.pid}-${live.size}`);
    try {
      mkdirSync(path);
    } catch (err) {
      return `cannot create ${path}: ${(err as Error).message}`;
    }
    const t = new Throttle(path, device, bps);
    live.add(t);
    try {
      writeFile(join(path, 'blkio.throttle.read_bps_device'), `${device} ${bps}`);
    } catch (err) {
      t.destroy();
      return `cannot set blkio.throttle.read_bps_device to "${device} ${bps}": ${(err as Error).message}`;
    }
    return t;
  }

  /**
   * Adds (or with 0 removes) a limit on read operations a second, as a cloud
   * volume or a spinning disk has: a bandwidth limit alone lets an isolated
   * small read through at once, so a page-cache miss would cost little more
   * than a hit.
   */
  limitIops(iops: number): void {
    writeFile(join(this.path, 'blkio.throttle.read_iops_device'), `${this.device} ${iops}`);
  }

  /** Moves a process (all its threads) into the cgroup. */
  join(pid = process.pid): void {
    writeFile(join(this.path, 'cgroup.procs'), String(pid));
  }

  /** Moves a process back to the root blkio cgroup. */
  leave(pid = process.pid): void {
    try {
      writeFile(join(BLKIO, 'cgroup.procs'), String(pid));
    } catch { /* process gone */ }
  }

  /** Pids currently in the cgroup. */
  members(): number[] {
    try {
      return readFileSync(join(this.path, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  /** Moves every member out and removes the cgroup. */
  destroy(): void {
    for (const pid of this.members()) this.leave(pid);
    try {
      rmdirSync(this.path);
    } catch { /* already gone, or a member is exiting */ }
    live.delete(this);
  }
}

/** Removes cgroups left by benchmark runs whose process is gone. */
function removeStale(): void {
  for (const name of readdirSync(BLKIO)) {
    if (!name.startsWith(PREFIX)) continue;
    const pid = Number(name.slice(PREFIX.length).split('-')[0]);
    if (pid === process.pid || existsSync(`/proc/${pid}`)) continue;
    const dir = join(BLKIO, name);
    try {
      for (const member of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        writeFile(join(BLKIO, 'cgroup.procs'), member);
      }
      rmdirSync(dir);
    } catch { /* leave it */ }
  }
}

function cleanupAll(): void {
  for (const t of [...live]) t.destroy();
}
atExit(cleanupAll);

/** Reads an evicted file with 1 MiB readSync calls in this process; returns MB/s. */
function coldReadMBps(path: string): number {
  evictPath(path);
  const buf = Buffer.allocUnsafe(MiB);
  const fd = openSync(path, 'r');
  const t0 = nowMs();
  let total = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, total);
      if (n === 0) break;
      total += n;
    }
  } finally {
    closeSync(fd);
  }
  return total / ((nowMs() - t0) / 1000) / 1e6;
}

/** The disk mode a benchmark phase runs in. */
export interface DiskMode {
  name: 'throttled' | 'unthrottled';
  /** "throttled 50 MB/s" or "unthrottled". */
  label: string;
  /** The cgroup to put the disk-reading process in (throttled mode only). */
  throttle: Throttle | null;
}

/** What the probe measured. */
export interface ProbeResult {
  works: boolean;
  limitMBps: number;
  throttledMBps: number | null;
  unthrottledMBps: number;
  device: string | null;
  reason: string;
}

/**
 * Creates a throttle and checks that it slows cold buffered reads by this
 * process. Returns the throttle (when it works) and what was measured.
 */
export function probeThrottle(bps: number, probeBytes = 32 * MiB): { throttle: Throttle | null; probe: ProbeResult } {
  const file = makeFile(join(TMP_DIR, `pagewarm-bench-probe-${process.pid}`), probeBytes);
  const limitMBps = bps / 1e6;
  try {
    const unthrottledMBps = coldReadMBps(file);
    const t = Throttle.create(bps);
    if (typeof t === 'string') {
      return { throttle: null, probe: { works: false, limitMBps, throttledMBps: null, unthrottledMBps, device: null, reason: t } };
    }
    let throttledMBps: number;
    try {
      t.join();
      throttledMBps = coldReadMBps(file);
    } finally {
      t.leave();
    }
    const works = throttledMBps <= limitMBps * 1.5 && throttledMBps <= unthrottledMBps * 0.6;
    const reason = works
      ? `cold reads: ${throttledMBps.toFixed(0)} MB/s in the cgroup vs ${unthrottledMBps.toFixed(0)} MB/s outside`
      : `the throttle did not slow cold reads (${throttledMBps.toFixed(0)} MB/s in the cgroup vs ${unthrottledMBps.toFixed(0)} MB/s outside)`;
    if (!works) t.destroy();
    return { throttle: works ? t : null, probe: { works, limitMBps, throttledMBps, unthrottledMBps, device: t.device, reason } };
  } finally {
    removeFile(file);
  }
}

/**
 * The disk modes to run, as `--disk` asks (default: both, throttled first).
 * Throttled mode is skipped, with the reason printed, when it cannot be set
 * up or does not slow reads.
 */
export function diskModes(flags: Flags, bps = 50_000_000): { modes: DiskMode[]; probe: ProbeResult | null } {
  const modes: DiskMode[] = [];
  let probe: ProbeResult | null = null;
  if (flags.disk !== 'unthrottled') {
    const r = probeThrottle(bps);
    probe = r.probe;
    console.log(`slow-disk probe: ${r.probe.reason}`);
    if (r.throttle) modes.push({ name: 'throttled', label: `throttled ${Math.round(bps / 1e6)} MB/s`, throttle: r.throttle });
    else console.log('throttled mode unavailable: running unthrottled only');
  }
  if (flags.disk !== 'throttled' || modes.length === 0) modes.push({ name: 'unthrottled', label: 'unthrottled', throttle: null });
  return { modes, probe };
}

/** Removes every throttle this process created (also done at exit). */
export function removeThrottles(): void {
  cleanupAll();
}
