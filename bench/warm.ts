/**
 * warm: bring a cold (evicted) or hot 1 GiB file into the page cache.
 *
 *   prepareForRead      pagewarm: sendfile to /dev/null on pagewarm's threads
 *   fs.read 1 MiB       an awaited fs.read loop into one 1 MiB Buffer (libuv pool)
 *   createReadStream    fs.createReadStream, defaults, data discarded
 *   fadvise WILLNEED    advise(..., 'willneed'): starts readahead, guarantees nothing
 *   C sendfile ref      bench/c/warm_ref.c: sendfile to /dev/null loop, one thread
 *
 * Wall time, CPU (user+sys, all threads of the process; the C reference
 * reports its own getrusage) and residency right after (cachestat). All
 * methods run in this process, back to back, in rotated order each repetition;
 * ratios are medians of per-repetition ratios. Then the per-call cost of
 * prepareForRead on an already resident 4 KiB and 1 MiB range (the fast path).
 *
 * usage: bench/warm.ts [--smoke] [--disk=both|throttled|unthrottled] [--reps=N] [--size=MiB]
 *        bench/warm.ts --fast-path-only   the per-call table alone; with
 *                                         PAGEWARM_FORCE_FALLBACK=1, the portable fallback's
 */
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { tracingChannel } from 'node:diagnostics_channel';
import { join } from 'node:path';
import * as pw from '../lib/index';
import {
  compileC, cpuSeconds, evictPath, gbps, KiB, makeFile, median, MiB, nowMs, pairedRatio, parseFlags,
  printTable, printTargets, removeFile, residentFraction, rotate, saveResults, target, TMP_DIR, type Flags, type Target,
} from './lib/common';
import { diskModes, type DiskMode } from './lib/slowdisk';

const METHODS = ['prepareForRead', 'fs.read 1 MiB', 'createReadStream', 'fadvise WILLNEED', 'C sendfile ref'] as const;
type Method = (typeof METHODS)[number];

interface Sample {
  wall: number; // seconds
  cpu: number; // seconds
  resident: number; // 0..1 right after
  settled?: number; // WILLNEED only: 0..1 once the readahead it started has stopped growing
}

/**
 * WILLNEED returns while its readahead is still in flight: wait (bounded)
 * until residency stops growing, so the next method starts from a quiet disk.
 */
async function settle(path: string): Promise<number> {
  let last = residentFraction(path);
  const t0 = nowMs();
  while (nowMs() - t0 < 5000) {
    await new Promise((r) => setTimeout(r, 100));
    const now = residentFraction(path);
    if (now === last) break;
    last = now;
  }
  return last;
}

async function runMethod(method: Method, path: string, cref: string | null): Promise<Sample | null> {
  if (method === 'C sendfile ref') {
    if (!cref) return null;
    const r = spawnSync(cref, [path], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`warm_ref failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout) as { wall: number; cpu: number };
    return { wall: out.wall, cpu: out.cpu, resident: residentFraction(path) };
  }
  const fh = await open(path, 'r');
  try {
    const c0 = cpuSeconds();
    const t0 = nowMs();
    if (method === 'prepareForRead') {
      await pw.prepareForRead(fh.fd);
    } else if (method === 'fs.read 1 MiB') {
      const buf = Buffer.allocUnsafe(MiB);
      for (let pos = 0; ;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) break;
        pos += bytesRead;
      }
    } else if (method === 'createReadStream') {
      await new Promise<void>((resolve, reject) => {
        const s = createReadStream(path);
        s.on('data', () => {});
        s.on('end', resolve);
        s.on('error', reject);
      });
    } else {
      pw.advise(fh.fd, 0, 0, 'willneed');
    }
    const wall = (nowMs() - t0) / 1000;
    const cpu = cpuSeconds() - c0;
    const resident = residentFraction(path);
    if (method === 'fadvise WILLNEED') return { wall, cpu, resident, settled: await settle(path) };
    return { wall, cpu, resident };
  } finally {
    await fh.close();
  }
}

interface PhaseResult {
  mode: string;
  state: 'cold' | 'hot';
  size: number;
  reps: number;
  samples: Record<string, Sample[]>;
}

async function phase(mode: DiskMode, state: 'cold' | 'hot', path: string, size: number, reps: number, cref: string | null): Promise<PhaseResult> {
  const samples: Record<string, Sample[]> = {};
  for (const m of METHODS) samples[m] = [];
  // One untimed pass of each method, so code paths are compiled and the first timed run is not special.
  for (const m of METHODS) {
    if (state === 'cold') evictPath(path);
    await runMethod(m, path, cref);
  }
  for (let rep = 0; rep < reps; rep++) {
    for (const m of rotate(METHODS, rep)) {
      if (state === 'cold') {
        evictPath(path);
      } else {
        const fh = await open(path, 'r');
        await pw.prepareForRead(fh);
        await fh.close();
      }
      const s = await runMethod(m, path, cref);
      if (s) samples[m].push(s);
    }
  }
  return { mode: mode.label, state, size, reps, samples };
}

/** The prepareForRead tracing channel, and a subscriber that only counts events. */
const channel = tracingChannel<unknown, pw.TraceContext>(pw.tracingChannels.prepareForRead);
let events = 0;
const count = (): void => {
  events++;
};
const counting = { start: count, end: count, asyncStart: count, asyncEnd: count, error: count };

async function fastPathCost(path: string, smoke: boolean): Promise<{ range: string; method: string; usPerCall: number; fastPathHits: number; calls: number }[]> {
  const fh = await open(path, 'r');
  const out: { range: string; method: string; usPerCall: number; fastPathHits: number; calls: number }[] = [];
  try {
    await pw.prepareForRead(fh.fd, 0, 2 * MiB);
    const calls = smoke ? 500 : 20000;
    const buf = Buffer.allocUnsafe(MiB);
    for (const [label, len] of [['4 KiB', 4 * KiB], ['1 MiB', MiB]] as const) {
      const cases: [string, () => Promise<unknown>][] = [
        ['prepareForRead (resident)', () => pw.prepareForRead(fh.fd, 0, len)],
        ['prepareForReadSync (resident)', async () => pw.prepareForReadSync(fh.fd, 0, len)],
        [`residencySync (${pw.capabilities().native ? 'cachestat' : 'unknown: no kernel query'})`, async () => pw.residencySync(fh.fd, 0, len)],
        ['fs read of the range (libuv)', () => fh.read(buf, 0, len, 0)],
        // The tracing channel's cost: the same calls with a subscriber (a
        // handler per event that counts), against the untraced rows above.
        ['prepareForRead (resident), traced', () => pw.prepareForRead(fh.fd, 0, len)],
        ['prepareForReadSync (resident), traced', async () => pw.prepareForReadSync(fh.fd, 0, len)],
      ];
      for (const [name, fn] of cases) {
        const traced = name.endsWith(', traced');
        if (traced) channel.subscribe(counting);
        try {
          for (let i = 0; i < 200; i++) await fn(); // warm up the JIT
          const hits0 = pw.stats().fastPathHits;
          const t0 = nowMs();
          for (let i = 0; i < calls; i++) await fn();
          const us = ((nowMs() - t0) * 1000) / calls;
          out.push({ range: label, method: name, usPerCall: us, fastPathHits: pw.stats().fastPathHits - hits0, calls });
        } finally {
          if (traced) channel.unsubscribe(counting);
        }
      }
    }
  } finally {
    await fh.close();
  }
  return out;
}

function printFastPath(fast: Awaited<ReturnType<typeof fastPathCost>>): void {
  const binding = pw.capabilities().native ? 'native' : 'portable fallback';
  printTable(`prepareForRead on an already resident range (per call, awaited one after another) [${binding}]`,
    ['range', 'call', 'us/call', 'fast-path hits'], fast.map((f) => [f.range, f.method, f.usPerCall, `${f.fastPathHits}/${f.calls}`]));
  const rows: Array<[string, string, number, number, string]> = [];
  for (const f of fast.filter((x) => x.method.endsWith(', traced'))) {
    const plain = fast.find((x) => x.range === f.range && x.method === f.method.replace(', traced', ''))!;
    rows.push([f.range, plain.method, plain.usPerCall, f.usPerCall, `+${(f.usPerCall - plain.usPerCall).toFixed(2)} us (${(f.usPerCall / plain.usPerCall).toFixed(2)}x)`]);
  }
  printTable(`Tracing channel cost per call (a subscriber that counts events; ${events} events seen) [${binding}]`,
    ['range', 'call', 'no subscriber us', 'subscriber us', 'cost'], rows);
}

/** --fast-path-only: the per-call table of a resident 2 MiB file, nothing else. */
async function fastPathOnly(smoke: boolean): Promise<void> {
  const path = join(TMP_DIR, `pagewarm-bench-warm-fast-${process.pid}`);
  makeFile(path, 2 * MiB);
  try {
    const fast = await fastPathCost(path, smoke);
    printFastPath(fast);
    const native = pw.capabilities().native;
    const file = saveResults(native ? 'warm-fast-path' : 'warm-fast-path-fallback', smoke, { native, fastPath: fast });
    console.log(`\nresults: ${file}`);
  } finally {
    removeFile(path);
  }
}

export async function main(flags: Flags = parseFlags()): Promise<void> {
  const smoke = flags.smoke;
  if (flags.raw['fast-path-only'] === 'true') return fastPathOnly(smoke);
  const sizeMiB = Number(flags.raw.size ?? (smoke ? 16 : 1024));
  const throttledMiB = Number(flags.raw['throttled-size'] ?? (smoke ? 8 : 128));
  const reps = flags.reps ?? (smoke ? 1 : 5);
  const cref = compileC('warm_ref');
  const { modes, probe } = diskModes(flags);
  const path = join(TMP_DIR, `pagewarm-bench-warm-${process.pid}`);
  const results: PhaseResult[] = [];
  const targets: Target[] = [];
  let fast: Awaited<ReturnType<typeof fastPathCost>> = [];
  try {
    for (const mode of modes) {
      const size = (mode.throttle ? throttledMiB : sizeMiB) * MiB;
      makeFile(path, size);
      console.log(`\nwarm: ${mode.label}, ${size / MiB} MiB file in ${TMP_DIR}, ${reps} paired repetitions`);
      if (mode.throttle) mode.throttle.join();
      try {
        for (const state of ['cold', 'hot'] as const) {
          const r = await phase(mode, state, path, size, state === 'hot' ? Math.max(reps, 3) : reps, cref);
          results.push(r);
          const ref = r.samples['C sendfile ref'];
          const fsr = r.samples['fs.read 1 MiB'];
          const rows = METHODS.map((m) => {
            const s = r.samples[m];
            const wall = s.map((x) => x.wall);
            const cpu = s.map((x) => x.cpu);
            return [
              m,
              median(wall) * 1000,
              gbps(size, median(wall)),
              median(cpu) * 1000,
              Math.min(...s.map((x) => x.resident)) * 100,
              s[0]?.settled === undefined ? '' : (median(s.map((x) => x.settled ?? NaN)) * 100).toFixed(1),
              ref.length ? pairedRatio(wall, ref.map((x) => x.wall)) : NaN,
              pairedRatio(cpu, fsr.map((x) => x.cpu)),
            ];
          });
          printTable(`warm ${state} ${size / MiB} MiB [${mode.label}] (medians of ${r.samples[METHODS[0]].length})`,
            ['method', 'wall ms', 'GB/s', 'CPU ms', 'min resident %', 'settled %', 'wall / C ref', 'CPU / fs.read'], rows);
          const pr = r.samples.prepareForRead;
          if (state === 'cold') {
            if (ref.length) {
              const w = pairedRatio(pr.map((x) => x.wall), ref.map((x) => x.wall));
              targets.push(target('warm cold wall prepareForRead / C ref', '<= 1.1', w, w <= 1.1, mode.label));
            }
          }
          const c = pairedRatio(pr.map((x) => x.cpu), fsr.map((x) => x.cpu));
          targets.push(target(`warm ${state} CPU prepareForRead / fs.read loop`, '<= 0.25', c, c <= 0.25, mode.label));
        }
      } finally {
        if (mode.throttle) mode.throttle.leave();
      }
      if (!mode.throttle) {
        fast = await fastPathCost(path, smoke);
        printFastPath(fast);
      }
    }
  } finally {
    for (const m of modes) m.throttle?.destroy();
    removeFile(path);
  }
  printTargets(targets);
  const file = saveResults('warm', smoke, { probe, sizeBytes: sizeMiB * MiB, throttledSizeBytes: throttledMiB * MiB, results, fastPath: fast, targets });
  console.log(`\nresults: ${file}`);
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
