/**
 * isolation: does warming steal the application's libuv threadpool?
 *
 * `fs.promises.stat` latency (p50, p99), one stat issued every millisecond (open loop), with
 * UV_THREADPOOL_SIZE=4, in three situations, rotated each repetition:
 *
 *   idle       nothing else running
 *   pagewarm   8 cold files warmed at once with prepareForRead (pagewarm's threads)
 *   libuv      the same 8 cold files read at once by awaited fs.read loops
 *              into 1 MiB Buffers (the libuv pool)
 *   C processes the same 8 warm-ups by 4 separate C processes (bench/c/warm_ref.c,
 *              two files each: as many at once as pagewarm's 4 threads): what
 *              the disk I/O alone costs this process's stat latency, with
 *              nothing of it running in this process
 *
 * Target: pagewarm's stat p99 within 2x of idle.
 *
 * usage: bench/isolation.ts [--smoke] [--disk=both|throttled|unthrottled] [--reps=N] [--size=MiB]
 */
process.env.UV_THREADPOOL_SIZE = '4'; // before the first libuv pool job
import { spawn } from 'node:child_process';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as pw from '../lib/index';
import {
  compileC, evictPath, makeFile, median, MiB, nowMs, parseFlags, percentile, printTable, printTargets, removeFile, rotate,
  saveResults, target, TMP_DIR, type Flags, type Target,
} from './lib/common';
import { diskModes } from './lib/slowdisk';

const SITUATIONS = ['idle', 'pagewarm', 'libuv', 'C processes'] as const;
type Situation = (typeof SITUATIONS)[number];

async function readAll(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(MiB);
    for (let pos = 0; ;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

async function warmAll(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await pw.prepareForRead(fh.fd);
  } finally {
    await fh.close();
  }
}

interface Run {
  situation: Situation;
  latenciesUs: number[];
  loadMs: number;
  loopDelayP99Ms: number;
}

/**
 * Spawns a C warm-up that waits for a line on stdin before it starts
 * (spawning blocks the event loop for tens of ms, so it must happen before
 * the measurement); returns its start trigger and its completion.
 */
function cProcess(bin: string, paths: string[]): { go: () => void; done: Promise<void> } {
  const c = spawn('sh', ['-c', 'read x; exec "$0" "$@"', bin, ...paths], { stdio: ['pipe', 'ignore', 'inherit'] });
  const done = new Promise<void>((resolve, reject) => {
    c.once('error', reject);
    c.once('exit', () => resolve());
  });
  return { go: () => c.stdin!.end('go\n'), done };
}

let cref: string | null = null;

async function measure(situation: Situation, files: string[], statFile: string, idleMs: number, maxMs: number): Promise<Run> {
  if (situation !== 'idle') for (const f of files) evictPath(f);
  const procs = situation === 'C processes' ? [0, 1, 2, 3].map((i) => cProcess(cref!, [files[i], files[i + 4]])) : [];
  if (procs.length) await new Promise((r) => setTimeout(r, 300)); // let the shells reach `read`
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = nowMs();
  let done = situation === 'idle';
  let loadMs = 0;
  const load = situation === 'idle' ? Promise.resolve() : Promise.all(situation === 'C processes'
    ? procs.map((p) => {
      p.go();
      return p.done;
    })
    : files.map((f) => (situation === 'pagewarm' ? warmAll(f) : readAll(f)))).then(() => {
    loadMs = nowMs() - t0;
    done = true;
  });
  // Open loop: one stat issued every millisecond whether or not earlier ones
  // have finished (a closed loop would hide the slow periods: a stat stuck
  // behind the load would be a single sample). At most 256 in flight.
  const lat: number[] = [];
  let inFlight = 0;
  let skipped = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const elapsed = nowMs() - t0;
      if (elapsed >= maxMs || (situation === 'idle' ? elapsed >= idleMs : done)) {
        clearInterval(timer);
        resolve();
        return;
      }
      if (inFlight >= 256) {
        skipped++;
        return;
      }
      inFlight++;
      const s = process.hrtime.bigint();
      stat(statFile).then(() => {
        inFlight--;
        lat.push(Number(process.hrtime.bigint() - s) / 1000);
      }, () => { inFlight--; });
    }, 1);
  });
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 1));
  if (skipped > 0) console.log(`  (${situation}: ${skipped} stats not issued: 256 already in flight)`);
  await load;
  h.disable();
  return { situation, latenciesUs: lat, loadMs, loopDelayP99Ms: h.percentile(99) / 1e6 };
}

export async function main(flags: Flags = parseFlags()): Promise<void> {
  const smoke = flags.smoke;
  const reps = flags.reps ?? (smoke ? 1 : 5);
  const { modes, probe } = diskModes(flags);
  cref = compileC('warm_ref');
  const situations = SITUATIONS.filter((s) => s !== 'C processes' || cref);
  const files: string[] = [];
  const statFile = join(TMP_DIR, `pagewarm-bench-iso-stat-${process.pid}`);
  makeFile(statFile, 4096);
  const targets: Target[] = [];
  const out: { mode: string; fileBytes: number; runs: Run[] }[] = [];
  try {
    for (const mode of modes) {
      const sizeMiB = Number(flags.raw.size ?? (smoke ? 4 : mode.throttle ? 16 : 256));
      files.splice(0).forEach(removeFile);
      for (let i = 0; i < 8; i++) files.push(makeFile(join(TMP_DIR, `pagewarm-bench-iso-${process.pid}-${i}`), sizeMiB * MiB));
      console.log(`\nisolation: ${mode.label}, 8 x ${sizeMiB} MiB cold files, UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE}, ${reps} repetitions`);
      if (mode.throttle) mode.throttle.join();
      const runs: Run[] = [];
      try {
        await measure('libuv', files, statFile, 200, 2000); // untimed warm-up of every code path
        await measure('pagewarm', files, statFile, 200, 2000);
        for (let rep = 0; rep < reps; rep++) {
          let idleMs = 1000;
          for (const s of rotate(situations, rep)) {
            const r = await measure(s, files, statFile, idleMs, smoke ? 5000 : 60000);
            if (s !== 'idle') idleMs = Math.max(300, Math.min(5000, r.loadMs));
            runs.push(r);
          }
        }
      } finally {
        if (mode.throttle) mode.throttle.leave();
      }
      out.push({ mode: mode.label, fileBytes: sizeMiB * MiB, runs });
      const pooled = (s: Situation) => runs.filter((r) => r.situation === s).flatMap((r) => r.latenciesUs);
      const perRep = (s: Situation, p: number) => runs.filter((r) => r.situation === s).map((r) => percentile(r.latenciesUs, p));
      const idle99 = perRep('idle', 99);
      const rows = situations.map((s) => {
        const all = pooled(s);
        const rs = runs.filter((r) => r.situation === s);
        const p99s = perRep(s, 99);
        return [
          s, all.length, percentile(all, 50), percentile(all, 99), percentile(all, 99.9), Math.max(...all),
          median(p99s.map((x, i) => x / idle99[i])),
          s === 'idle' ? '' : median(rs.map((r) => r.loadMs)).toFixed(0),
          median(rs.map((r) => r.loopDelayP99Ms)),
        ];
      });
      printTable(`fs.promises.stat latency, us [${mode.label}] (pooled over ${reps} repetitions)`,
        ['during', 'stats', 'p50', 'p99', 'p99.9', 'max', 'p99 / idle p99 (paired median)', 'load ms', 'loop delay p99 ms'], rows);
      const ratio = median(perRep('pagewarm', 99).map((x, i) => x / idle99[i]));
      const pooledRatio = percentile(pooled('pagewarm'), 99) / percentile(pooled('idle'), 99);
      targets.push(target('isolation stat p99 during pagewarm warm-ups / idle', '<= 2', ratio, ratio <= 2, mode.label,
        `pooled p99 ratio ${pooledRatio.toFixed(2)}`));
      const lib = median(perRep('libuv', 99).map((x, i) => x / idle99[i]));
      const cp = median(perRep('C processes', 99).map((x, i) => x / idle99[i]));
      console.log(`stat p99 vs idle: pagewarm ${ratio.toFixed(2)}x; libuv-pool warm-ups ${lib.toFixed(1)}x; the same I/O from 4 C processes ${cp.toFixed(2)}x`);
    }
  } finally {
    for (const m of modes) m.throttle?.destroy();
    files.forEach(removeFile);
    removeFile(statFile);
  }
  printTargets(targets);
  const file = saveResults('isolation', smoke, {
    probe, targets,
    results: out.map((o) => ({
      mode: o.mode, fileBytes: o.fileBytes,
      runs: o.runs.map((r) => ({
        situation: r.situation, stats: r.latenciesUs.length, p50: percentile(r.latenciesUs, 50), p99: percentile(r.latenciesUs, 99),
        p999: percentile(r.latenciesUs, 99.9), max: Math.max(...r.latenciesUs), loadMs: r.loadMs, loopDelayP99Ms: r.loopDelayP99Ms,
      })),
    })),
  });
  console.log(`\nresults: ${file}`);
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
