/**
 * Shared helpers for the benchmarks: command-line flags, machine facts, test
 * files, eviction, CPU accounting, statistics, tables and result files.
 *
 * Every figure a benchmark reports is measured side by side in one run, with
 * the methods alternated repetition by repetition (this machine is shared and
 * noisy); absolute values are printed next to the ratios.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import * as pw from '../../lib/index';

/** The repository root. */
export const ROOT = join(__dirname, '..', '..');
/** Where benchmarks write their JSON results and compiled C references (gitignored). */
export const OUT_DIR = join(ROOT, 'bench', 'out');
/** Where large temporary files go. */
export const TMP_DIR = process.env.PAGEWARM_BENCH_TMP ?? '/tmp';
/** The file that loads TypeScript in child processes. */
export const REGISTER = join(ROOT, 'bench', 'register.js');
/** Starts a .ts module in a child process: `node LAUNCH file.ts args` (see bench/launch.js). */
export const LAUNCH = join(ROOT, 'bench', 'launch.js');

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Parsed command-line flags: `--smoke`, `--disk=both|throttled|unthrottled` (restart also `slowfs`, its default), `--reps=N`, `--key=value`. */
export interface Flags {
  smoke: boolean;
  disk: 'both' | 'throttled' | 'unthrottled' | 'slowfs';
  reps?: number;
  raw: Record<string, string>;
}

export function parseFlags(argv = process.argv.slice(2)): Flags {
  const raw: Record<string, string> = {};
  for (const a of argv) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(a);
    if (m) raw[m[1]] = m[2] ?? 'true';
  }
  const disk = (raw.disk ?? 'both') as Flags['disk'];
  if (!['both', 'throttled', 'unthrottled', 'slowfs'].includes(disk)) throw new Error(`--disk must be both, throttled, unthrottled or slowfs, not ${disk}`);
  const flags: Flags = { smoke: raw.smoke === 'true' || process.env.PAGEWARM_BENCH_SMOKE === '1', disk, raw };
  if (raw.reps !== undefined) flags.reps = Number(raw.reps);
  return flags;
}

/** Facts about this machine, for the record. */
export interface Machine {
  date: string;
  nproc: number;
  kernel: string;
  cpu: string;
  node: string;
  memGiB: number;
  fs: string;
  /** 1-minute load average when the results were saved (others share this machine). */
  loadavg1: number;
}

export function machine(): Machine {
  let fs = 'unknown';
  try {
    fs = execFileSync('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '-T', TMP_DIR], { encoding: 'utf8' }).trim().replace(/\s+/g, ' on ');
  } catch { /* findmnt missing */ }
  const mem = /MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return {
    date: new Date().toISOString(),
    nproc: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    kernel: execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim(),
    cpu: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    memGiB: mem ? Math.round(Number(mem[1]) / 1024 / 1024) : 0,
    fs,
    loadavg1: loadavg()[0],
  };
}

/**
 * Creates (or reuses, when it already has the right size) a file of `size`
 * bytes of incompressible data, fsynced so that eviction can drop every page.
 */
export function makeFile(path: string, size: number): string {
  if (existsSync(path) && statSync(path).size === size) return path;
  const fd = openSync(path, 'w');
  try {
    const block = Buffer.allocUnsafe(MiB);
    for (let done = 0; done < size;) {
      randomFillSync(block, 0, 4096); // vary each MiB a little; the rest repeats
      const n = Math.min(block.length, size - done);
      done += writeSync(fd, block, 0, n, done);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return path;
}

/** Drops a file's pages from the page cache (posix_fadvise DONTNEED via pagewarm's `evict`). */
export function evictPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
    pw.evict(fd);
  } finally {
    closeSync(fd);
  }
}

/** Resident fraction 0..1 of a file, or NaN when the kernel does not tell. */
export function residentFraction(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const r = pw.residencySync(fd);
    if (r.residentBytes === null || r.bytes === 0) return NaN;
    return r.residentBytes / r.bytes;
  } finally {
    closeSync(fd);
  }
}

export function removeFile(path: string): void {
  try { unlinkSync(path); } catch { /* already gone */ }
}

/** CPU time of this process (all threads: JS, libuv pool, pagewarm's pool), in seconds. */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** user+system CPU seconds of another process (from /proc, clock-tick resolution). */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[11] = utime, fields[12] = stime (fields 14 and 15 of proc(5))
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank];
}

/** Median of per-repetition ratios a[i]/b[i]: the paired estimate. */
export function pairedRatio(a: number[], b: number[]): number {
  const n = Math.min(a.length, b.length);
  const r: number[] = [];
  for (let i = 0; i < n; i++) r.push(a[i] / b[i]);
  return median(r);
}

/** Rotates `items` by `rep`, so each method runs first, second, ... in turn. */
export function rotate<T>(items: readonly T[], rep: number): T[] {
  const k = rep % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

export function fmt(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return x === Infinity ? 'inf' : 'n/a';
  if (Math.abs(x) >= 1000) return x.toFixed(0);
  if (Math.abs(x) >= 100) return x.toFixed(Math.min(digits, 1));
  return x.toFixed(digits);
}

export function gbps(bytes: number, seconds: number): number {
  return bytes / seconds / 1e9;
}

/** Prints an aligned text table. */
export function printTable(title: string, headers: string[], rows: (string | number)[][]): void {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? fmt(c) : c)));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  console.log(`\n${title}`);
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of cells) console.log(line(r));
}

/** One target of the issue: met or missed, with the measured value. */
export interface Target {
  name: string;
  goal: string;
  value: number;
  met: boolean;
  mode?: string;
  note?: string;
}

export function target(name: string, goal: string, value: number, met: boolean, mode?: string, note?: string): Target {
  const t: Target = { name, goal, value, met };
  if (mode !== undefined) t.mode = mode;
  if (note !== undefined) t.note = note;
  return t;
}

export function printTargets(targets: Target[]): void {
  printTable('Targets', ['target', 'goal', 'measured', 'result'], targets.map((t) => [
    t.mode ? `${t.name} [${t.mode}]` : t.name, t.goal, fmt(t.value), t.met ? 'MET' : 'MISSED',
  ]));
}

/** Writes a benchmark's results to bench/out/<name>.json (or <name>.smoke.json). */
export function saveResults(name: string, smoke: boolean, data: unknown): string {
  mkdirSync(OUT_DIR, { recursive: true });
  console.log(`load average (1 min) now: ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs (the machine is shared)`);
  const file = join(OUT_DIR, `${name}${smoke ? '.smoke' : ''}.json`);
  writeFileSync(file, JSON.stringify({ benchmark: name, smoke, machine: machine(), ...(data as object) }, null, 2));
  return file;
}

/**
 * Compiles a C reference from bench/c/<name>.c into bench/out/<name> with cc
 * -O2 (only when the source is newer than the binary). Returns the binary's
 * path, or null when no C compiler works.
 */
export function compileC(name: string): string | null {
  const src = join(ROOT, 'bench', 'c', `${name}.c`);
  const bin = join(OUT_DIR, name);
  mkdirSync(OUT_DIR, { recursive: true });
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  const r = spawnSync('cc', ['-O2', '-Wall', '-o', bin, src], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.log(`cc failed for ${src}: ${r.error?.message ?? r.stderr}`);
    return null;
  }
  return bin;
}

const exitTasks = new Set<() => void>();

/**
 * Runs `task` when the process exits, and on SIGINT, SIGTERM and SIGHUP
 * (then exits 128 + the signal's number): for cgroups, namespaces and other
 * state a benchmark leaves on the machine. Tasks must be safe to run twice.
 */
export function atExit(task: () => void): void {
  if (exitTasks.size === 0) {
    const runAll = (): void => {
      for (const t of [...exitTasks]) t();
    };
    process.on('exit', runAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        runAll();
        process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
      });
    }
  }
  exitTasks.add(task);
}

/** Sleeps without blocking. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The size of an open file. */
export function fdSize(fd: number): number {
  return fstatSync(fd).size;
}
