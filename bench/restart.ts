/**
 * restart: how soon a service's tail latency recovers after a restart, with
 * nothing, warmFiles of everything, restore of a hot set snapshotted before
 * the restart, and that restore with a budget of half the hot set.
 *
 * The service (bench/restart/service.ts, its own process) reads
 * Zipf-distributed records of 4-64 KiB (4,096 records, s = 1, each at its
 * own place spread over every file; POSIX_FADV_RANDOM, as a database reads)
 * from 32 files of 64 MiB (2 GiB), 4,000 requests a second arriving whether
 * or not earlier ones are done (latency counted from arrival, so requests
 * queued behind a disk read count), and reports p50/p99 every second. Where
 * this process may (root, chrt), the service runs SCHED_FIFO, every thread of
 * it, as the broker benchmark's do: the other work on this small shared
 * machine (slowfs, the warming, the VM's background reclaim) then delays it
 * less, and what its p99 shows is the page cache, not the scheduler.
 *
 * The disk: by default slowfs (bench/lib/slowfs.ts), a FUSE pass-through
 * over the files where every random read waits 5 ms, 4 at once, 50 MB/s in
 * all, as a spinning disk or a cloud volume; where it cannot be mounted, the
 * blkio throttle (50 MB/s and --iops reads a second, the service and the
 * warming in the same cgroup); `--disk=throttled|unthrottled` chooses.
 *
 * First the service makes its hot set (600,000 reads, as fast as it can),
 * its steady p99 is measured, and snapshot() records the hot set. For each
 * strategy, a restart: the service process ends, every page of the files is
 * evicted, a new service process starts and the strategy with it; the time
 * until the new service's p99 is back within 2x of steady for good is
 * recorded, up to a cap, with the bytes the service itself had to read from
 * the disk. p99 is taken over spans of 10 s (40,000 reads), steady's too:
 * the earliest second from which every 10 s span has its p99 within 2x of
 * the steady spans' (the median of theirs). A one-second p99 would judge the
 * service's own hiccups (a garbage collection, a stall of this shared VM:
 * a few ms each, in every run, warm or not) as much as the cache. Beside it,
 * the same settling judged by the cache alone: the first second from which
 * the service's misses (the bytes slowfs read for it) stay below 1% of the
 * bytes it read, for 10 s. The per-second p99 over time goes to
 * docs/restart.svg.
 *
 * usage: bench/restart.ts [--smoke] [--disk=slowfs|throttled|unthrottled] [--cap=SECONDS] [--iops=N] [--latency=MS] [--threads=N] [--no-fifo] [--only=WORD,...]
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as pw from '../lib/index';
import { fmt, makeFile, median, MiB, nowMs, parseFlags, printTable, printTargets, REGISTER, ROOT, saveResults, sleep, target, TMP_DIR, type Target } from './lib/common';
import { probeThrottle, type Throttle } from './lib/slowdisk';
import { mountSlowFs, type SlowFs } from './lib/slowfs';
import { lineChartSvg } from './lib/svg';

const flags = parseFlags();
const smoke = flags.smoke;
const FILES = smoke ? 4 : 32;
const FILE_SIZE = (smoke ? 16 : 64) * MiB;
/**
 * The service's reporting window: the chart's resolution and the unit the
 * 10 s spans (HOLD_MS) are made of; each window carries its latencies.
 */
const WINDOW_MS = 1000;
/**
 * The service's records: 4,096 of 4-64 KiB (about 136 MiB), each at its own
 * 64 KiB slot spread over the 2 GiB, read by Zipf's law with exponent 1.
 * The warm-up's 600,000 reads find every record (the rarest is read about
 * 16 times), so the steady p99 is a page-cache read; after a restart,
 * demand reads must find the rarely read records one miss at a time, and
 * p99 stays a disk read until 99% of reads hit, that is until nearly all
 * of them are back (the rarest is asked for about once in 9 seconds).
 */
const RECORDS = 4096;
const ZIPF_S = 1.0;
/** Reads of the warm-up (at WARM_UP_RATE, unthrottled): enough to find every record. */
const WARM_UP_READS = smoke ? 20_000 : 600_000;
const WARM_UP_RATE = 40_000;
/** The service's requests a second (open loop). */
const RATE = 4000;
/** The span p99 is taken over, steady and after a restart; and how long the misses must stay below 1%. */
const HOLD_MS = smoke ? 2000 : 10_000;
/** The steady phase: two spans and more, so their median is the steady p99. */
const STEADY_MS = smoke ? 4000 : 20_000;
const CAP_MS = Number(flags.raw.cap ?? (smoke ? 5 : 120)) * 1000;
/**
 * Read operations a second the throttled disk allows besides its 50 MB/s
 * (`--iops=N`, 0 for none), as a cloud volume or a spinning disk limits
 * them: a bandwidth limit alone lets an isolated 4-64 KiB read through at
 * once, and a miss then costs the service less than its own latency floor.
 */
const IOPS = Number(flags.raw.iops ?? 300);
/** The slow disk by default: every random read waits 5 ms (a spinning disk's access time), 4 at once, 50 MB/s in all. */
const SLOWFS_DISK = { latencyMs: Number(flags.raw.latency ?? 5), bytesPerSecond: 50_000_000, depth: 4 };
/** A run on slowfs with another `--latency` keeps its chart and results beside the default's: docs/restart-1ms.svg. */
const VARIANT = SLOWFS_DISK.latencyMs === 5 ? '' : `-${SLOWFS_DISK.latencyMs}ms`;
const STRATEGIES = ['nothing', 'warmFiles (everything)', 'restore (snapshot)', 'restore, budget half the hot set'] as const;
type Strategy = (typeof STRATEGIES)[number];
/** `--only=WORD,WORD`: the strategies whose names contain one of the words (an experiment; the targets need all four). */
const ONLY = typeof flags.raw.only === 'string' ? flags.raw.only.split(',').filter((w) => w !== '') : [];

interface Window { t: number; n: number; bytes: number; p50: number; p99: number; diskBytes: number; cpuMs: number; lat?: number[] }
/** The fraction of the service's reads (bytes) that missed, above which the cache is not back: p99 is a miss beyond 1%. */
const MISS_LIMIT = 0.01;

class Service {
  readonly windows: Window[] = [];
  private waiters: Array<() => void> = [];
  constructor(readonly child: ChildProcess) {
    child.on('message', (m: Window & { type: string }) => {
      if (m.type !== 'window' || (m as { beforeMark?: boolean }).beforeMark) return; // the window a mark ended belongs before it
      this.windows.push({ t: m.t, n: m.n, bytes: m.bytes, p50: m.p50, p99: m.p99, diskBytes: m.diskBytes, cpuMs: m.cpuMs, lat: m.lat });
      for (const w of this.waiters.splice(0)) w();
    });
  }
  next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  mark(): void {
    this.windows.length = 0;
    this.child.send({ type: 'mark' });
  }
}

/** chrt's path when the service may run SCHED_FIFO (root, chrt found, not --no-fifo), else null. */
const FIFO = ((): string | null => {
  if (flags.raw['no-fifo'] !== undefined || process.getuid?.() !== 0) return null;
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin']) if (existsSync(join(dir, 'chrt'))) return join(dir, 'chrt');
  return null;
})();

/** The service's scheduling policy as chrt reads it back (e.g. SCHED_FIFO), or 'SCHED_OTHER'. */
function policyOf(pid: number): string {
  if (!FIFO) return 'SCHED_OTHER';
  return execFileSync(FIFO, ['-p', String(pid)], { encoding: 'utf8' }).split('\n')[0]!.replace(/^.*: /, '');
}

async function startService(files: string[]): Promise<Service> {
  const config = { files, fileSize: FILE_SIZE, records: RECORDS, zipfS: ZIPF_S, seed: 2463534242, rate: RATE, windowMs: WINDOW_MS };
  // SCHED_FIFO from its first instruction (chrt runs node), so every thread
  // it starts (libuv's pool, V8's) inherits the policy.
  const execArgv = ['-r', REGISTER];
  const child = FIFO
    ? fork(join(__dirname, 'restart', 'service.ts'), [JSON.stringify(config)], { execPath: FIFO, execArgv: ['-f', '50', process.execPath, ...execArgv] })
    : fork(join(__dirname, 'restart', 'service.ts'), [JSON.stringify(config)], { execArgv });
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`service exited: ${code}`)));
  });
  return new Service(child);
}

async function main(): Promise<void> {
  const dir = join(TMP_DIR, `pagewarm-bench-restart${smoke ? '-smoke' : ''}`);
  mkdirSync(dir, { recursive: true });
  const files = Array.from({ length: FILES }, (_, i) => makeFile(join(dir, `segment-${i}.dat`), FILE_SIZE));
  let throttle: Throttle | null = null;
  let mode = 'unthrottled';
  let slowfs: SlowFs | null = null;
  let paths = files;
  if ((flags.raw.disk === undefined || flags.disk === 'slowfs') && !smoke) {
    const r = await mountSlowFs(dir, SLOWFS_DISK, 'segment-0.dat');
    if (typeof r === 'string') console.log(`restart: slowfs unavailable (${r}); the blkio throttle instead`);
    else {
      slowfs = r;
      paths = files.map((f) => join(r.mountpoint, basename(f)));
      mode = `slowfs (FUSE): ${SLOWFS_DISK.latencyMs} ms a random read, ${SLOWFS_DISK.depth} at once, ${SLOWFS_DISK.bytesPerSecond / 1e6} MB/s`;
      console.log(`restart: ${mode}; probe: a cold 4 KiB read took ${fmt(r.probeMs, 2)} ms`);
    }
  }
  // pagewarm's threads each have one read in flight: as many as the disk serves at once.
  const threads = Number(flags.raw.threads ?? (slowfs ? SLOWFS_DISK.depth : pw.stats().configuredThreads));
  pw.configure({ threads });
  console.log(`restart: pagewarm's pool: ${threads} threads`);
  if (!slowfs && flags.disk !== 'unthrottled' && !smoke) {
    const r = probeThrottle(50_000_000);
    console.log(`slow-disk probe: ${r.probe.reason}`);
    throttle = r.throttle;
    if (throttle && IOPS > 0) throttle.limitIops(IOPS);
    if (throttle) mode = `throttled 50 MB/s${IOPS > 0 ? `, ${IOPS} reads/s` : ''}`;
    else console.log('restart: the throttle is unavailable here: running unthrottled (recovery is then quick for every strategy)');
  }
  await pw.evictFiles(paths);
  await pw.evictFiles(files);
  let service = await startService(paths);
  const policy = policyOf(service.child.pid!);
  console.log(`restart: the service runs ${policy}${FIFO ? '' : ' (SCHED_FIFO needs root and chrt)'}`);
  try {
    // The service builds its hot set (unthrottled and fast, so it does not take all day).
    console.log(`restart: the service makes its hot set: ${WARM_UP_READS} reads at up to ${WARM_UP_RATE}/s ...`);
    service.child.send({ type: 'rate', rate: WARM_UP_RATE });
    service.mark();
    const warmStart = nowMs();
    while (service.windows.reduce((a, w) => a + w.n, 0) < WARM_UP_READS && nowMs() - warmStart < 120_000) await service.next();
    service.child.send({ type: 'rate', rate: RATE });
    await sleep(2 * WINDOW_MS); // the queue of the fast phase drains
    if (throttle) {
      throttle.join(service.child.pid!);
      throttle.join();
    }
    service.mark();
    await sleep(STEADY_MS);
    const SPAN = HOLD_MS / WINDOW_MS;
    const steadySpans: number[] = [];
    for (let k = SPAN; k <= service.windows.length; k++) steadySpans.push(spanP99(service.windows.slice(k - SPAN, k)));
    const steady = median(steadySpans);
    for (const x of service.windows) x.lat = undefined;
    const steadyRate = median(service.windows.map((w) => (w.n * 1000) / WINDOW_MS));
    if (steady > 5) console.log(`restart: WARNING: the steady p99 (${fmt(steady, 2)} ms) is not a page-cache read: the hot set is not resident yet`);
    const steadyP50 = median(service.windows.map((w) => w.p50));
    const set = await pw.snapshot(slowfs ? slowfs.mountpoint : dir);
    const hotBytes = set.files.reduce((s, f) => s + f.ranges.reduce((a, x, k) => a + (k % 2 ? x : 0), 0), 0) * set.pageSize;
    console.log(`restart: steady p99 ${fmt(steady, 3)} ms at ${fmt(steadyRate, 0)} reads/s; hot set ${fmt(hotBytes / MiB, 0)} MiB of ${(FILES * FILE_SIZE) / MiB} MiB`);

    const results: Record<string, {
      recoveredMs: number | null; missesSettledMs: number | null; strategyMs: number | null; readBytes: number; pagedOutBytes: number | null; windows: Window[];
    }> = {};
    for (const strategy of STRATEGIES.filter((s) => ONLY.length === 0 || ONLY.some((w) => s.includes(w)))) {
      // The restart: the service process ends, every page of its files is
      // dropped, a new service process starts and the strategy with it.
      const exited = new Promise((resolve) => service.child.once('exit', resolve));
      service.child.disconnect();
      await Promise.race([exited, sleep(5000)]);
      await pw.evictFiles(paths);
      // slowfs's backing files too: the "disk" itself needs no cache, and
      // gigabytes of idle pages left there are what the VM's background
      // reclaim would then be busy with.
      if (slowfs) await pw.evictFiles(files);
      const cold = (await pw.filesResidency(paths)).residentBytes;
      const pageoutBefore = damonPagedOut();
      service = await startService(paths);
      if (throttle) throttle.join(service.child.pid!);
      const ac = new AbortController();
      service.mark();
      const t0 = nowMs();
      let servedBytes = slowfs ? servedBy(slowfs, service.child.pid!) : 0;
      let strategyMs: number | null = null;
      let readBytes = 0;
      const work = run(strategy, paths, set, hotBytes, ac.signal).then((bytes) => {
        strategyMs = nowMs() - t0;
        readBytes = bytes;
      }, (err) => {
        if ((err as Error).name !== 'AbortError') throw err;
      });
      // Recovered: the start of the first 10 s span after the last one whose
      // p99 was over 2x steady (or in which the service fell behind: with
      // reads stuck behind the disk, the few that completed say nothing of
      // the rest), once SPAN more spans have followed, all good (settled,
      // not a lull between spikes).
      let recoveredMs: number | null = null;
      let lastBadSpan = -1;
      const spanStart = (i: number): number => (i === 0 ? 0 : service.windows[i - 1]!.t);
      // The same settling, judged by the cache alone (slowfs's counts): the
      // end of the last window where more than MISS_LIMIT of what the
      // service read came from the disk, once HOLD_MS of windows have followed.
      let missesSettledMs: number | null = null;
      let lastMissy = 0;
      while (nowMs() - t0 < CAP_MS + 2 * HOLD_MS) {
        await service.next();
        const k = service.windows.length - 1;
        const w = service.windows[k]!;
        if (slowfs) {
          // On FUSE the kernel's block-layer accounting sees nothing: slowfs counts the service's reads.
          const now = servedBy(slowfs, service.child.pid!);
          w.diskBytes = now - servedBytes;
          servedBytes = now;
        }
        const keptUp = (x: Window): boolean => x.n >= 0.9 * RATE * (WINDOW_MS / 1000);
        if (slowfs && (!keptUp(w) || w.diskBytes > MISS_LIMIT * w.bytes)) lastMissy = w.t;
        if (slowfs && missesSettledMs === null && w.t - lastMissy >= HOLD_MS) missesSettledMs = lastMissy;
        if (k >= SPAN - 1) {
          const first = k - SPAN + 1;
          const span = service.windows.slice(first, k + 1);
          if (span.some((x) => !keptUp(x)) || spanP99(span) > 2 * steady) lastBadSpan = first;
          service.windows[first]!.lat = undefined; // no later span needs it
          if (recoveredMs === null && first - lastBadSpan >= SPAN) recoveredMs = spanStart(lastBadSpan + 1);
        }
        if (recoveredMs !== null && (missesSettledMs !== null || !slowfs)) break;
      }
      for (const x of service.windows) x.lat = undefined;
      if (recoveredMs !== null && recoveredMs > CAP_MS) recoveredMs = null;
      if (missesSettledMs !== null && missesSettledMs > CAP_MS) missesSettledMs = null;
      ac.abort();
      await work;
      const pageoutAfter = damonPagedOut();
      const pagedOutBytes = pageoutBefore === null || pageoutAfter === null ? null : pageoutAfter - pageoutBefore;
      if (pagedOutBytes !== null) console.log(`restart: ${strategy}: the VM's background reclaim (DAMON pageout) took ${fmt(pagedOutBytes / MiB, 0)} MiB meanwhile`);
      results[strategy] = { recoveredMs, missesSettledMs, strategyMs, readBytes, pagedOutBytes, windows: [...service.windows] };
      const tail = service.windows.slice(-8);
      const mib = (ws: Window[]): string => fmt(ws.reduce((a, w) => a + w.diskBytes, 0) / MiB, 1);
      console.log(`restart: ${strategy}: the service's own disk reads: ${mib(service.windows)} MiB in all, ${mib(tail)} MiB in the last ${tail.length} windows`);
      console.log(`restart: ${strategy}: last windows p50 ${tail.map((w) => fmt(w.p50, 2)).join(' ')} ms, p99 ${tail.map((w) => fmt(w.p99, 1)).join(' ')} ms`);
      if (slowfs) console.log(`restart: ${strategy}: misses ${missesSettledMs === null ? `not below 1% for good within ${CAP_MS / 1000} s` : `below 1% for good after ${fmt(missesSettledMs / 1000)} s`}`);
      console.log(`restart: ${strategy}: ${recoveredMs === null ? `not recovered in ${CAP_MS / 1000} s` : `p99 back within 2x in ${fmt(recoveredMs / 1000)} s`}` +
        `${strategyMs === null ? '' : `; the warming took ${fmt(strategyMs / 1000)} s and read ${fmt(readBytes / MiB, 0)} MiB`} (resident before: ${cold} bytes)`);
    }

    if (ONLY.length > 0) {
      console.log(`results (--only: no table, targets or chart): ${saveResults('restart-only', smoke, { mode, policy, windowMs: WINDOW_MS, steadyP99Ms: steady, results })}`);
      return;
    }
    const sec = (s: Strategy): number => (results[s]!.recoveredMs ?? CAP_MS) / 1000;
    const serviceMiB = (s: Strategy): string => fmt(results[s]!.windows.reduce((a, w) => a + w.diskBytes, 0) / MiB, 1);
    const missSec = (s: Strategy): string => (!slowfs ? '-' : results[s]!.missesSettledMs === null ? `> ${CAP_MS / 1000}` : fmt(results[s]!.missesSettledMs! / 1000));
    printTable(`Time until p99 over 10 s is back within 2x of steady (${fmt(steady, 3)} ms), ${mode}; service ${policy}`,
      ['strategy', 'recovered s', 'misses < 1% s', 'warming s', 'warming read MiB', "service's own disk reads MiB", 'background pageout MiB'],
      STRATEGIES.map((s) => [s, results[s]!.recoveredMs === null ? `> ${CAP_MS / 1000}` : fmt(sec(s)), missSec(s), results[s]!.strategyMs === null ? '-' : fmt(results[s]!.strategyMs! / 1000),
        fmt(results[s]!.readBytes / MiB, 0), serviceMiB(s), results[s]!.pagedOutBytes === null ? '-' : fmt(results[s]!.pagedOutBytes! / MiB, 0)]));
    const targets: Target[] = [
      target('recovery: nothing / restore', '>= 5', sec('nothing') / sec('restore (snapshot)'), sec('nothing') / sec('restore (snapshot)') >= 5, mode,
        results.nothing!.recoveredMs === null ? `nothing did not recover within the ${CAP_MS / 1000} s cap: the ratio is a lower bound` : undefined),
      target('recovery: warmFiles / restore', '>= 3', sec('warmFiles (everything)') / sec('restore (snapshot)'), sec('warmFiles (everything)') / sec('restore (snapshot)') >= 3, mode),
    ];
    printTargets(targets);
    if (slowfs) {
      const m = (s: Strategy): number => (results[s]!.missesSettledMs ?? CAP_MS) / 1000;
      console.log(`restart: judged by misses below 1% instead: nothing / restore ${fmt(m('nothing') / m('restore (snapshot)'))}, ` +
        `warmFiles / restore ${fmt(m('warmFiles (everything)') / m('restore (snapshot)'))}`);
    }

    const svg = lineChartSvg({
      title: `p99 read latency each second after a restart (${mode}; 2 GiB, Zipf reads of 4-64 KiB)`,
      unit: 'ms',
      xLabel: 'seconds after the restart',
      reference: { value: 2 * steady, label: `2x steady p99 over 10 s (${fmt(2 * steady, 2)} ms)` },
      series: STRATEGIES.map((s, i) => ({
        name: `${s}: ${results[s]!.recoveredMs === null ? `> ${CAP_MS / 1000} s` : `${fmt(sec(s))} s`}`,
        color: ['#9e9e9e', '#e57373', '#1e88e5', '#43a047'][i]!,
        points: results[s]!.windows.map((w) => [w.t / 1000, Math.max(w.p99, 0.001)] as [number, number]),
      })),
    });
    const svgPath = smoke ? join(ROOT, 'bench', 'out', 'restart.smoke.svg') : join(ROOT, 'docs', `restart${slowfs ? VARIANT : ''}.svg`);
    mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
    writeFileSync(svgPath, svg);
    console.log(`chart: ${svgPath}`);
    const file = saveResults(`restart${slowfs ? VARIANT : ''}`, smoke, { mode, policy, windowMs: WINDOW_MS, steadyP99Ms: steady, steadyP50Ms: steadyP50, steadyReadsPerSec: steadyRate, hotBytes, capMs: CAP_MS, results, targets });
    console.log(`results: ${file}`);
  } finally {
    const exited = new Promise((resolve) => service.child.once('exit', resolve));
    service.child.disconnect();
    await Promise.race([exited, sleep(5000)]); // its files close before the mount goes
    throttle?.destroy();
    slowfs?.unmount();
  }
}

/**
 * Bytes DAMON's pageout schemes have reclaimed since boot (these VMs run one
 * in the background: it takes page cache from physical regions it saw idle),
 * or null where there is none to read.
 */
function damonPagedOut(): number | null {
  const root = '/sys/kernel/mm/damon/admin/kdamonds';
  try {
    let total = 0;
    for (const k of readdirSync(root).filter((n) => /^\d+$/.test(n))) {
      writeFileSync(join(root, k, 'state'), 'update_schemes_stats');
      for (const c of readdirSync(join(root, k, 'contexts')).filter((n) => /^\d+$/.test(n))) {
        const schemes = join(root, k, 'contexts', c, 'schemes');
        for (const sc of readdirSync(schemes).filter((n) => /^\d+$/.test(n))) {
          if (readFileSync(join(schemes, sc, 'action'), 'utf8').trim() !== 'pageout') continue;
          total += Number(readFileSync(join(schemes, sc, 'stats', 'sz_applied'), 'utf8'));
        }
      }
    }
    return total;
  } catch {
    return null;
  }
}

/** Bytes slowfs has read for process `pid` (its page-cache misses and their readahead). */
function servedBy(slowfs: SlowFs, pid: number): number {
  return slowfs.stats().byPid[String(pid)]?.bytes ?? 0;
}

/** The p99 of every read in `windows` (their latencies, merged). */
function spanP99(windows: Window[]): number {
  const all: number[] = [];
  for (const w of windows) for (const x of w.lat ?? []) all.push(x);
  if (all.length === 0) return Infinity;
  all.sort((x, y) => x - y);
  return all[Math.min(all.length - 1, Math.ceil(0.99 * all.length) - 1)]!;
}

/** Starts a strategy; resolves with the bytes it read from the disk. */
async function run(strategy: Strategy, files: string[], set: pw.HotSet, hotBytes: number, signal: AbortSignal): Promise<number> {
  switch (strategy) {
    case 'nothing':
      return 0;
    case 'warmFiles (everything)':
      return (await pw.warmFiles(files, { signal })).warmedBytes;
    case 'restore (snapshot)':
      return (await pw.restore(set, { signal })).restoredBytes;
    default:
      return (await pw.restore(set, { signal, budget: Math.floor(hotBytes / 2) })).restoredBytes;
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
