/**
 * files: many small files, against vmtouch (Debian's, the reference).
 *
 * Trees of 20,000 and 200,000 files of 1 B to 16 KiB (uniform sizes, 100
 * files a directory), kept in TMP_DIR between runs. For each tree, whole
 * commands timed side by side, in alternating order, medians of paired
 * ratios over the repetitions:
 *
 *   warm, cold   `pagewarm warm TREE`  vs `vmtouch -t TREE` (tree evicted before each run)
 *   stat, hot    `pagewarm stat TREE`  vs `vmtouch TREE`
 *   evict, hot   `pagewarm evict TREE` vs `vmtouch -e TREE` (tree warmed before each run)
 *
 * pagewarm runs as its installed command does (node bin/pagewarm.js, the
 * compiled package: built first), so its wall time includes Node's start.
 * Then, in this process on the hot 20,000-file tree: the directory walks
 * compared (fs.opendir with bufferSize 1024, readdir with file types as the
 * CLI walks, and find(1) as a native walk), and the per-file cost of
 * warmFile (one open, warm-up and close a file, 8 at once) against warmFiles
 * (the batch path).
 *
 * The disk is the machine's own (no throttle: the targets compare two tools
 * on the same disk, so its speed cancels out).
 *
 * usage: bench/files.ts [--smoke] [--reps=N] [--trees=20000,200000]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import * as pw from '../lib/index';
import { Walk, type WalkOptions } from '../lib/files/walk';
import { fmt, median, nowMs, pairedRatio, parseFlags, printTable, printTargets, ROOT, saveResults, target, TMP_DIR, type Target } from './lib/common';

const flags = parseFlags();
const smoke = flags.smoke;
const reps = flags.reps ?? (smoke ? 1 : 5);
const counts = smoke ? [500] : (flags.raw.trees ?? '20000,200000').split(',').map(Number);
const PAGEWARM = [join(ROOT, 'bin', 'pagewarm.js')];

/** The tree of `n` files (made once, reused while its marker matches). */
function tree(n: number): { dir: string; bytes: number } {
  const dir = join(TMP_DIR, `pagewarm-bench-files-${n}`);
  const marker = `${dir}.done`;
  if (fs.existsSync(marker)) return { dir, bytes: Number(fs.readFileSync(marker, 'utf8')) };
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(`files: making ${n} files under ${dir} ...`);
  let seed = 12345;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const data = Buffer.alloc(16384);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * 256);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const sub = join(dir, `d${Math.floor(i / 10000)}`, `s${Math.floor(i / 100)}`);
    if (i % 100 === 0) fs.mkdirSync(sub, { recursive: true });
    const size = 1 + Math.floor(random() * 16384);
    data.writeUInt32LE(i, 0); // no two files alike
    fs.writeFileSync(join(sub, `f${i % 100}.dat`), data.subarray(0, size));
    bytes += size;
  }
  execFileSync('sync');
  fs.writeFileSync(marker, String(bytes));
  return { dir, bytes };
}

/** Wall seconds of a command; its output checked for an exit status of 0. */
function timed(cmd: string, args: string[]): number {
  const start = nowMs();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const s = (nowMs() - start) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
  return s;
}

/** Resident fraction of the tree (cachestat, through pagewarm's batch path). */
async function residentFraction(dir: string): Promise<number> {
  const w = new Walk(walkOptions([dir]), () => {}, () => {});
  w.run();
  const r = await pw.filesResidency(w.files);
  return r.bytes === 0 ? 1 : r.residentBytes / r.bytes;
}

function walkOptions(paths: string[]): WalkOptions {
  return { paths, maxDepth: Infinity, dereference: false, crossMounts: false, include: [], exclude: [] };
}

interface Pair {
  pagewarm: number[];
  vmtouch: number[];
}

async function main(): Promise<void> {
  const vmtouch = spawnSync('vmtouch', ['-h']).error ? null : 'vmtouch';
  if (!vmtouch) {
    console.log('files: vmtouch is not installed (apt-get install -y vmtouch, or npm run bench:setup): no reference, nothing to compare');
    process.exitCode = 1;
    return;
  }
  console.log('files: building the package (npm run build:lib) so bin/pagewarm.js is current');
  execFileSync('npm', ['run', 'build:lib'], { cwd: ROOT, stdio: 'ignore' });
  const results: Record<string, unknown> = {};
  const targets: Target[] = [];
  const rows: (string | number)[][] = [];

  for (const n of counts) {
    const { dir, bytes } = tree(n);
    const pairs: Record<'warm' | 'stat' | 'evict', Pair> = {
      warm: { pagewarm: [], vmtouch: [] }, stat: { pagewarm: [], vmtouch: [] }, evict: { pagewarm: [], vmtouch: [] },
    };
    const coldAfterEvict: number[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const order = rep % 2 === 0 ? (['pagewarm', 'vmtouch'] as const) : (['vmtouch', 'pagewarm'] as const);
      for (const who of order) {
        // warm, cold: the tree evicted (by vmtouch, the neutral party), then checked cold.
        timed('vmtouch', ['-qe', dir]);
        coldAfterEvict.push(await residentFraction(dir));
        pairs.warm[who].push(who === 'pagewarm' ? timed('node', [...PAGEWARM, 'warm', '-q', dir]) : timed('vmtouch', ['-qt', dir]));
      }
      for (const who of order) pairs.stat[who].push(who === 'pagewarm' ? timed('node', [...PAGEWARM, 'stat', '-q', dir]) : timed('vmtouch', ['-q', dir]));
      for (const who of order) {
        timed('vmtouch', ['-qt', dir]);
        pairs.evict[who].push(who === 'pagewarm' ? timed('node', [...PAGEWARM, 'evict', '-q', dir]) : timed('vmtouch', ['-qe', dir]));
      }
    }
    const label = `${n.toLocaleString('en')} files, ${(bytes / 2 ** 20).toFixed(0)} MiB`;
    for (const op of ['warm', 'stat', 'evict'] as const) {
      const p = pairs[op];
      const ratio = pairedRatio(p.pagewarm, p.vmtouch);
      rows.push([label, op === 'warm' ? 'warm (cold)' : op === 'stat' ? 'stat (hot)' : 'evict (hot)', median(p.pagewarm), median(p.vmtouch), ratio]);
      targets.push(target(`pagewarm ${op} / vmtouch, ${n} files`, '<= 1.0', ratio, ratio <= 1.0));
    }
    results[String(n)] = { bytes, reps, pairs, residentAfterEvict: coldAfterEvict };
    console.log(`files: ${label}: resident after each eviction: ${coldAfterEvict.map((x) => fmt(x, 3)).join(' ')}`);
  }
  printTable('Whole commands, wall seconds (median) and pagewarm/vmtouch (median of paired ratios)',
    ['tree', 'command', 'pagewarm s', 'vmtouch s', 'ratio'], rows);

  // In this process, on the first tree, hot.
  const { dir } = tree(counts[0]!);
  timed('vmtouch', ['-qt', dir]);
  const walks: Record<string, number[]> = { 'fs.opendir bufferSize 1024': [], 'readdir withFileTypes (the CLI)': [], 'find -type f (native)': [] };
  let files = 0;
  for (let rep = 0; rep < reps; rep++) {
    let start = nowMs();
    const stack = [dir];
    let found = 0;
    while (stack.length > 0) {
      const d = stack.pop()!;
      for await (const e of await fs.promises.opendir(d, { bufferSize: 1024 })) {
        if (e.isDirectory()) stack.push(join(d, e.name));
        else if (e.isFile()) found++;
      }
    }
    walks['fs.opendir bufferSize 1024']!.push(nowMs() - start);
    start = nowMs();
    const w = new Walk(walkOptions([dir]), () => {}, () => {});
    w.run();
    walks['readdir withFileTypes (the CLI)']!.push(nowMs() - start);
    files = w.files.length;
    if (found !== files) throw new Error(`walks disagree: ${found} vs ${files}`);
    start = nowMs();
    execFileSync('find', [dir, '-type', 'f'], { maxBuffer: 256 << 20 });
    walks['find -type f (native)']!.push(nowMs() - start);
  }
  printTable(`Directory walks of ${files} files (hot), ms (median)`, ['walk', 'ms', 'us per file'],
    Object.entries(walks).map(([k, v]) => [k, median(v), (median(v) * 1000) / files]));

  const w = new Walk(walkOptions([dir]), () => {}, () => {});
  w.run();
  const paths = w.files;
  const perFile: Record<string, number[]> = { 'warmFile, 8 at once': [], warmFiles: [] };
  for (let rep = 0; rep < reps; rep++) {
    let start = nowMs();
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < paths.length) await pw.warmFile(paths[next++]!);
    }));
    perFile['warmFile, 8 at once']!.push(((nowMs() - start) * 1000) / paths.length);
    start = nowMs();
    await pw.warmFiles(paths);
    perFile.warmFiles!.push(((nowMs() - start) * 1000) / paths.length);
  }
  printTable(`Warming ${paths.length} hot files from JS, us per file (median)`, ['call', 'us per file'],
    Object.entries(perFile).map(([k, v]) => [k, median(v)]));
  const batchRatio = pairedRatio(perFile.warmFiles!, perFile['warmFile, 8 at once']!);
  console.log(`warmFiles / warmFile per file: ${fmt(batchRatio)}`);

  printTargets(targets);
  const file = saveResults('files', smoke, { mode: 'unthrottled (the machine\'s disk)', vmtouch: vmtoucher(), results, walks, perFile, targets });
  console.log(`results: ${file}`);
}

function vmtoucher(): string {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'vmtouch'], { encoding: 'utf8' });
  return r.status === 0 ? `vmtouch ${r.stdout.trim()} (Debian)` : 'vmtouch';
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
