/**
 * broker-latency (the headline): does serving old data hurt producers?
 *
 * A broker process (examples/broker) with one FETCH strategy; a producer
 * process sending PRODUCE at a fixed rate and recording ack latency in an HDR
 * histogram (from when each record was due); consumer processes FETCHing old
 * segments that are evicted (before the run, and by the consumer after each
 * fetch). Per strategy: produce p50/p99/p99.9/max and fetch throughput while
 * both run; then, with the producer stopped, the consumers go on alone for a
 * few seconds to measure broker CPU seconds per GiB fetched (the broker's own
 * process.cpuUsage: JS, libuv pool and pagewarm's threads) without the
 * produce traffic's share (which also varies with the strategy: a blocked
 * event loop batches acks). Plus a no-fetch baseline (same broker, no
 * consumers). Strategies run in rotated order each repetition; in
 * throttled mode only the broker process is in the throttled cgroup.
 *
 * usage: bench/broker-latency.ts [--smoke] [--disk=both|throttled|unthrottled] [--reps=N]
 *        [--duration=s] [--rate=records/s] [--consumers=N] [--fetch-bytes=N] [--segments=N] [--segment-mib=N]
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import * as hdr from 'hdr-histogram-js';
import { segmentName } from '../examples/broker/log';
import { availableStrategies, type Strategy } from '../examples/broker/strategies';
import {
  evictPath, GiB, median, MiB, pairedRatio, LAUNCH, parseFlags, printTable, printTargets, ROOT, rotate, saveResults,
  sleep, target, TMP_DIR, type Flags, type Target,
} from './lib/common';
import { diskModes, type DiskMode } from './lib/slowdisk';
import { barChartSvg, type Panel } from './lib/svg';
import type { ConsumerJob, ConsumerResult } from './broker/consumer';
import type { ProducerJob, ProducerResult } from './broker/producer';

type Run_ = 'no-fetch baseline' | Strategy;
const COLORS: Record<Run_, string> = {
  'no-fetch baseline': '#9e9e9e',
  blocking: '#d62728',
  stream: '#1f77b4',
  pagewarm: '#2ca02c',
};

interface Config {
  durationMs: number;
  /** Consumers alone after the producer stops: the broker CPU per GiB window. */
  cpuWindowMs: number;
  warmupMs: number;
  rate: number;
  recordBytes: number;
  consumers: number;
  fetchBytes: number;
  segments: number;
  segmentBytes: number;
  reps: number;
  /**
   * Scheduling of the two latency-critical threads, the producer's and the
   * broker's event-loop thread, identical for every strategy and the
   * baseline: 'fifo' runs both SCHED_FIFO (chrt) above everything else on the
   * machine; consumers, the broker's other threads (libuv pool, pagewarm's
   * pool, V8) and other users' processes stay SCHED_OTHER. 'none' leaves all
   * at the default.
   */
  priority: 'fifo' | 'none';
  fifoPriority: number;
  /**
   * Total fetch rate cap (bytes/s, shared equally by the consumers) during the
   * measurement window, per disk mode; 0: uncapped. Unthrottled, the
   * strategies otherwise serve different byte rates (and so do different
   * amounts of CPU work) while produce latency is measured.
   */
  fetchCap: { throttled: number; unthrottled: number };
  /** The pagewarm strategy's FETCH path (examples/broker/strategies.ts); absent: the example's default, sendFile. */
  pagewarmPath?: string;
}

/** Run-queue statistics of one thread (/proc/PID/task/TID/schedstat): ns on CPU, ns waiting for a CPU, timeslices. */
interface SchedStat { runNs: number; waitNs: number; slices: number }

function schedstat(pid: number, tid = pid): SchedStat {
  try {
    const [run, wait, slices] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return { runNs: run, waitNs: wait, slices };
  } catch {
    return { runNs: NaN, waitNs: NaN, slices: NaN };
  }
}

/** Major page faults of one thread (/proc/PID/task/TID/stat field 12) and bytes it caused to be read from storage (/proc/PID/task/TID/io). */
function threadFaultsIo(pid: number, tid = pid): { majflt: number; readBytes: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const m = /read_bytes:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/io`, 'utf8'));
    return { majflt: Number(f[9]), readBytes: m ? Number(m[1]) : NaN };
  } catch {
    return { majflt: NaN, readBytes: NaN };
  }
}

/**
 * CPU seconds (user, system) of a process's threads grouped by name (the
 * main thread as 'loop'; pagewarm-N as 'pagewarm-pool'; libuv's
 * 'libuv-worker'; the rest by their name), from /proc/PID/task/TID/stat.
 */
function threadCpu(pid: number): Record<string, { user: number; sys: number }> {
  const out: Record<string, { user: number; sys: number }> = {};
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      let name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (Number(tid) === pid) name = 'loop';
      else if (/^pagewarm-\d+$/.test(name)) name = 'pagewarm-pool';
      else if (/^V8 /.test(name)) name = 'v8';
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const e = (out[name] ??= { user: 0, sys: 0 });
      e.user += Number(f[11]) / 100;
      e.sys += Number(f[12]) / 100;
    } catch { /* thread gone */ }
  }
  return out;
}

function cpuDelta(a: ReturnType<typeof threadCpu>, b: ReturnType<typeof threadCpu>): Record<string, { user: number; sys: number }> {
  const out: Record<string, { user: number; sys: number }> = {};
  for (const [k, v] of Object.entries(b)) {
    const u = v.user - (a[k]?.user ?? 0);
    const sy = v.sys - (a[k]?.sys ?? 0);
    if (u + sy > 0) out[k] = { user: Number(u.toFixed(2)), sys: Number(sy.toFixed(2)) };
  }
  return out;
}

/** Machine-wide CPU pressure (PSI "some" total, us): time at least one runnable task waited for a CPU. */
function psiCpuSomeUs(): number {
  try {
    const m = /some .*total=(\d+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Makes one thread SCHED_FIFO at `prio` (chrt -p changes only the thread it names); returns the policy read back. */
function setFifo(tid: number, prio: number): string {
  execFileSync('chrt', ['-f', '-p', String(prio), String(tid)], { stdio: 'ignore' });
  return execFileSync('chrt', ['-p', String(tid)], { encoding: 'utf8' }).split('\n')[0].replace(/^.*: /, '');
}

/** Whether this process may set SCHED_FIFO (root, chrt present, RT runtime available). */
function fifoAvailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  try {
    execFileSync('chrt', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'chrt not found';
  }
  return null;
}

interface RunResult {
  run: Run_;
  rep: number;
  histogram: string; // HDR, us
  latenessP99: number; // ms: how late the producer sent against its schedule
  p50: number;
  p99: number;
  p999: number;
  max: number; // ms
  recorded: number;
  maxInFlight: number;
  fetchedBytes: number; // by consumers inside the window
  fetchMBps: number;
  brokerCpuSeconds: number; // inside the window
  brokerFetchedBytes: number; // by the broker's count inside the window
  fetchOnlyCpuSeconds: number; // consumers alone, after the producer stopped
  fetchOnlyBytes: number;
  loopDelayP99Ms: number; // the broker's event-loop delay in the main window
  loopDelayMaxMs: number;
  diskReadBytes: number; // read from storage by the broker (/proc/PID/io read_bytes), main window
  /** ms per s the broker's event-loop thread waited on a run queue for a CPU (main window), and per wake-up (us). */
  brokerLoopWaitMsPerS: number;
  brokerLoopWaitUsPerSlice: number;
  /** The same for the producer's main thread. */
  producerWaitMsPerS: number;
  producerWaitUsPerSlice: number;
  /** CPU ms per s used by the broker's event-loop thread in the main window (JS, and kernel work done on it). */
  brokerLoopCpuMsPerS: number;
  /** Major page faults taken by the broker's event-loop thread, and bytes it read from storage, in the main window. */
  brokerLoopMajorFaults: number;
  brokerLoopReadBytes: number;
  /** The broker's CPU seconds (user, system) in the main window, by thread group. */
  brokerThreadCpu: Record<string, { user: number; sys: number }>;
  /** FETCH requests the broker answered in the main window. */
  fetches: number;
  /** Machine-wide PSI cpu "some" during the main window, % of wall time. */
  psiCpuSomePct: number;
  loadavg1: number;
}

/** Bytes the process really caused to be read from storage (all its threads). */
function readBytes(pid: number): number {
  const m = /read_bytes:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Old segments full of 1 KiB records, plus an empty active segment after them. */
function prepareLog(dir: string, cfg: Config): { id: number; size: number; path: string }[] {
  mkdirSync(dir, { recursive: true });
  const segs: { id: number; size: number; path: string }[] = [];
  const rec = 1024;
  const block = Buffer.alloc(MiB);
  for (let o = 0; o < block.length; o += rec) {
    block.writeUInt32BE(rec - 4, o);
    block.fill(0x30 + ((o / rec) % 40), o + 4, o + rec);
  }
  for (let id = 0; id < cfg.segments; id++) {
    const path = join(dir, segmentName(id));
    segs.push({ id, size: cfg.segmentBytes, path });
    const fd = openSync(path, 'w');
    for (let done = 0; done < cfg.segmentBytes;) {
      block.writeUInt32BE(id * 1_000_003 + done, 8); // vary the data
      done += writeSync(fd, block, 0, Math.min(block.length, cfg.segmentBytes - done), done);
    }
    fsyncSync(fd);
    closeSync(fd);
  }
  resetActive(dir, cfg);
  return segs;
}

/** Removes what earlier runs produced: the active segment starts empty each run. */
function resetActive(dir: string, cfg: Config): void {
  for (const name of readdirSync(dir)) {
    if (/^\d{20}\.log$/.test(name) && Number(name.slice(0, 20)) >= cfg.segments) unlinkSync(join(dir, name));
  }
  writeFileSync(join(dir, segmentName(cfg.segments)), '');
}

function forkTs(file: string, args: string[] = []): ChildProcess {
  return fork(LAUNCH, [file, ...args], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
}

function request<T>(child: ChildProcess, msg: object, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.off('message', on);
      reject(new Error(`no '${type}' from pid ${child.pid} within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
    child.send(msg);
  });
}

function waitFor<T>(child: ChildProcess, type: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${type}' from pid ${child.pid} within ${timeoutMs} ms`)), timeoutMs);
    const on = (m: { type: string }) => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', on);
      resolve(m as T);
    };
    child.on('message', on);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pid ${child.pid} exited (${code}) before '${type}'`));
    });
  });
}

function kill(children: ChildProcess[]): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

async function runOnce(run: Run_, rep: number, mode: DiskMode, dir: string, segs: { id: number; size: number; path: string }[], cfg: Config): Promise<RunResult> {
  resetActive(dir, cfg);
  for (const s of segs) evictPath(s.path);
  const strategy: Strategy = run === 'no-fetch baseline' ? 'stream' : run;
  const children: ChildProcess[] = [];
  try {
    const broker = forkTs(join(ROOT, 'examples', 'broker', 'server.ts'), ['--dir', dir, '--strategy', strategy, '--segment-bytes', String(cfg.segmentBytes), ...(cfg.pagewarmPath ? ['--pagewarm-path', cfg.pagewarmPath] : [])]);
    children.push(broker);
    if (mode.throttle) mode.throttle.join(broker.pid!);
    const { port } = await waitFor<{ port: number }>(broker, 'listening', 30_000);
    const producer = forkTs(join(__dirname, 'broker', 'producer.ts'));
    children.push(producer);
    const consumers: ChildProcess[] = [];
    const nConsumers = run === 'no-fetch baseline' ? 0 : cfg.consumers;
    for (let i = 0; i < nConsumers; i++) {
      const c = forkTs(join(__dirname, 'broker', 'consumer.ts'));
      consumers.push(c);
      children.push(c);
    }
    // Each child says 'ready' once loaded (IPC messages sent earlier would be lost).
    await Promise.all(children.slice(1).map((c) => waitFor(c, 'ready', 60_000)));
    if (cfg.priority === 'fifo') {
      // The producer's and the broker's event-loop threads only (TID = PID for
      // a process's main thread); everything else stays SCHED_OTHER.
      for (const pid of [broker.pid!, producer.pid!]) {
        const policy = setFifo(pid, cfg.fifoPriority);
        if (!/SCHED_FIFO/.test(policy)) throw new Error(`pid ${pid}: policy ${policy} after chrt -f`);
      }
    }
    const startAt = Date.now() + 300;
    const window = { startAt, warmupMs: cfg.warmupMs, durationMs: cfg.durationMs };
    const pResult = request<ProducerResult>(producer, { port, rate: cfg.rate, recordBytes: cfg.recordBytes, ...window } satisfies ProducerJob, 'result', cfg.warmupMs + cfg.durationMs + 60_000);
    const cResults = consumers.map((c, i) => request<ConsumerResult>(c, {
      port, segments: segs, first: Math.floor((i * segs.length) / Math.max(1, nConsumers)), maxBytes: cfg.fetchBytes, ...window,
      runMs: cfg.warmupMs + cfg.durationMs + (nConsumers ? cfg.cpuWindowMs + 500 : 0),
      paceBytesPerSec: cfg.fetchCap[mode.name] / Math.max(1, nConsumers),
    } satisfies ConsumerJob, 'result', cfg.warmupMs + cfg.durationMs + cfg.cpuWindowMs + 60_000));
    type Stats = { cpuSeconds: number; fetchedBytes: number; fetches: number; loopDelayMs: { p99: number; max: number } };
    await sleep(startAt + cfg.warmupMs - Date.now());
    const s0 = await request<Stats>(broker, { type: 'stats' }, 'stats', 30_000);
    const io0 = readBytes(broker.pid!);
    const b0 = schedstat(broker.pid!);
    const p0 = schedstat(producer.pid!);
    const psi0 = psiCpuSomeUs();
    const f0 = threadFaultsIo(broker.pid!);
    const tc0 = threadCpu(broker.pid!);
    const t0 = performance.now();
    await sleep(startAt + cfg.warmupMs + cfg.durationMs - Date.now());
    // /proc first: the producer exits soon after the window, and a blocked
    // broker may take a while to answer the stats request.
    const b1 = schedstat(broker.pid!);
    const p1 = schedstat(producer.pid!);
    const psi1 = psiCpuSomeUs();
    const f1 = threadFaultsIo(broker.pid!);
    const tc1 = threadCpu(broker.pid!);
    const wallS = (performance.now() - t0) / 1000;
    const s1 = await request<Stats>(broker, { type: 'stats' }, 'stats', 30_000);
    const io1 = readBytes(broker.pid!);
    const p = await pResult;
    let s2 = s1;
    let s3 = s1;
    if (nConsumers) {
      await sleep(startAt + cfg.warmupMs + cfg.durationMs + 250 - Date.now()); // the producer's last acks
      s2 = await request<Stats>(broker, { type: 'stats' }, 'stats', 30_000);
      await sleep(cfg.cpuWindowMs);
      s3 = await request<Stats>(broker, { type: 'stats' }, 'stats', 30_000);
    }
    const cs = await Promise.all(cResults);
    broker.send({ type: 'close' });
    await Promise.race([once(broker, 'exit'), sleep(5000)]);
    const h = hdr.decodeFromCompressedBase64(p.histogram);
    const fetchedBytes = cs.reduce((a, c) => a + c.bytes, 0);
    return {
      run, rep, histogram: p.histogram,
      p50: h.getValueAtPercentile(50) / 1000, p99: h.getValueAtPercentile(99) / 1000,
      p999: h.getValueAtPercentile(99.9) / 1000, max: h.maxValue / 1000,
      recorded: p.recorded, maxInFlight: p.maxInFlight,
      latenessP99: hdr.decodeFromCompressedBase64(p.lateness).getValueAtPercentile(99) / 1000,
      fetchedBytes, fetchMBps: fetchedBytes / (cfg.durationMs / 1000) / 1e6,
      brokerCpuSeconds: s1.cpuSeconds - s0.cpuSeconds,
      brokerFetchedBytes: s1.fetchedBytes - s0.fetchedBytes,
      fetchOnlyCpuSeconds: s3.cpuSeconds - s2.cpuSeconds,
      fetchOnlyBytes: s3.fetchedBytes - s2.fetchedBytes,
      loopDelayP99Ms: s1.loopDelayMs.p99,
      loopDelayMaxMs: s1.loopDelayMs.max,
      diskReadBytes: io1 - io0,
      brokerLoopCpuMsPerS: (b1.runNs - b0.runNs) / 1e6 / wallS,
      fetches: s1.fetches - s0.fetches,
      brokerThreadCpu: cpuDelta(tc0, tc1),
      brokerLoopMajorFaults: f1.majflt - f0.majflt,
      brokerLoopReadBytes: f1.readBytes - f0.readBytes,
      brokerLoopWaitMsPerS: (b1.waitNs - b0.waitNs) / 1e6 / wallS,
      brokerLoopWaitUsPerSlice: (b1.waitNs - b0.waitNs) / 1e3 / Math.max(1, b1.slices - b0.slices),
      producerWaitMsPerS: (p1.waitNs - p0.waitNs) / 1e6 / wallS,
      producerWaitUsPerSlice: (p1.waitNs - p0.waitNs) / 1e3 / Math.max(1, p1.slices - p0.slices),
      psiCpuSomePct: (psi1 - psi0) / 1e4 / wallS,
      loadavg1: loadavg()[0],
    };
  } finally {
    kill(children);
  }
}

function pooled(runs: RunResult[]): hdr.Histogram {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  for (const r of runs) h.add(hdr.decodeFromCompressedBase64(r.histogram));
  return h;
}

interface ModeSummary {
  mode: string;
  rows: {
    run: Run_; reps: number; p50: number; p99: number; p999: number; max: number; fetchMBps: number;
    /** Broker CPU s in the 10 s window, producer and consumers running. */
    cpuSeconds: number;
    /** Broker CPU s per GiB fetched, consumers alone. */
    cpuPerGiB: number;
    /** Fetch throughput, consumers alone. */
    fetchOnlyMBps: number;
    /** Broker CPU s per GiB in the main window, produce traffic included. */
    cpuPerGiBWithProduce: number;
    /** Median over runs of the broker's event-loop delay p99 / max, ms. */
    loopDelayP99Ms: number;
    loopDelayMaxMs: number;
    /** Bytes read from storage by the broker per byte fetched (main window). */
    diskPerFetched: number;
    p99VsBaseline: number;
    /** Medians over runs: producer lateness p99 (ms), run-queue wait of the broker's loop thread and of the producer (ms/s), machine PSI cpu some (%). */
    latenessP99Ms: number;
    loopWaitMsPerS: number;
    producerWaitMsPerS: number;
    psiCpuSomePct: number;
    /** Median over runs of the broker's loop-thread CPU per FETCH, us (loop CPU minus the baseline's median, per fetch). */
    loopCpuUsPerFetch: number;
  }[];
}

export async function main(flags: Flags = parseFlags()): Promise<void> {
  const smoke = flags.smoke;
  const n = (k: string, full: number, small: number) => Number(flags.raw[k] ?? (smoke ? small : full));
  const cfg: Config = {
    durationMs: n('duration', 10, 1.5) * 1000,
    cpuWindowMs: n('cpu-window', 5, 1) * 1000,
    warmupMs: smoke ? 300 : 1000,
    rate: n('rate', 1000, 200),
    recordBytes: n('record-bytes', 1024, 1024),
    consumers: n('consumers', 2, 2),
    fetchBytes: n('fetch-bytes', MiB, 256 * 1024),
    segments: n('segments', 8, 4),
    segmentBytes: n('segment-mib', 64, 4) * MiB,
    reps: flags.reps ?? (smoke ? 1 : 5),
    priority: (flags.raw.priority ?? (fifoAvailable() === null ? 'fifo' : 'none')) as Config['priority'],
    fifoPriority: n('fifo-priority', 10, 10),
    ...(flags.raw['pagewarm-path'] ? { pagewarmPath: flags.raw['pagewarm-path'] } : {}),
    fetchCap: {
      throttled: n('fetch-cap-throttled', 0, 0) * 1e6,
      unthrottled: n('fetch-cap-unthrottled', 200, 200) * 1e6,
    },
  };
  if (!['fifo', 'none'].includes(cfg.priority)) throw new Error(`--priority must be fifo or none, not ${cfg.priority}`);
  if (cfg.priority === 'fifo' && fifoAvailable() !== null) throw new Error(`--priority=fifo: ${fifoAvailable()}`);
  if (flags.raw.priority === undefined && cfg.priority === 'none') console.log(`priority: none (SCHED_FIFO unavailable: ${fifoAvailable()})`);
  const { available, missing } = availableStrategies();
  // --only=baseline,pagewarm,... runs a subset (experiments); --tag=NAME writes bench/out/broker-latency.NAME.{json,svg}.
  const only = flags.raw.only ? flags.raw.only.split(',').map((x) => (x === 'baseline' ? 'no-fetch baseline' : x)) : null;
  const tag = flags.raw.tag;
  const runs: Run_[] = (['no-fetch baseline', ...(['blocking', 'stream', 'pagewarm'] as const).filter((s) => available.includes(s))] as Run_[])
    .filter((r) => !only || only.includes(r));
  for (const [s, why] of Object.entries(missing)) console.log(`strategy ${s} skipped: ${why}`);
  const { modes, probe } = diskModes(flags);
  const dir = join(TMP_DIR, `pagewarm-bench-broker-${process.pid}`);
  const all: { mode: string; runs: RunResult[] }[] = [];
  const summaries: ModeSummary[] = [];
  const targets: Target[] = [];
  try {
    const segs = prepareLog(dir, cfg);
    for (const mode of modes) {
      console.log(`\nbroker-latency: ${mode.label}; priority ${cfg.priority === 'fifo' ? `SCHED_FIFO ${cfg.fifoPriority} for the producer and the broker's event-loop thread` : 'none (all SCHED_OTHER)'}; producer ${cfg.rate} records/s of ${cfg.recordBytes} B; ${cfg.consumers} consumers fetching ${cfg.fetchBytes / 1024} KiB at a time from ${cfg.segments} x ${cfg.segmentBytes / MiB} MiB evicted segments${cfg.fetchCap[mode.name] ? `, fetching capped at ${cfg.fetchCap[mode.name] / 1e6} MB/s in total while producing` : ''}; ${cfg.durationMs / 1000} s measured after ${cfg.warmupMs / 1000} s; ${cfg.reps} repetitions`);
      const results: RunResult[] = [];
      for (let rep = 0; rep < cfg.reps; rep++) {
        for (const run of rotate(runs, rep)) {
          const r = await runOnce(run, rep, mode, dir, segs, cfg);
          results.push(r);
          console.log(`  rep ${rep + 1} ${run.padEnd(17)} p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} p99.9 ${r.p999.toFixed(2)} max ${r.max.toFixed(1)} ms; fetch ${r.fetchMBps.toFixed(0)} MB/s; broker CPU ${r.brokerCpuSeconds.toFixed(2)} s; producer lateness p99 ${r.latenessP99.toFixed(2)} ms; broker loop delay p99 ${r.loopDelayP99Ms.toFixed(1)} max ${r.loopDelayMaxMs.toFixed(1)} ms; disk reads ${(r.diskReadBytes / 1e6 / (cfg.durationMs / 1000)).toFixed(0)} MB/s; broker loop thread CPU ${r.brokerLoopCpuMsPerS.toFixed(0)} ms/s, ${r.fetches} fetches, ${r.brokerLoopMajorFaults} major faults, ${(r.brokerLoopReadBytes / 1024).toFixed(0)} KiB read from disk; run-queue wait: broker loop ${r.brokerLoopWaitMsPerS.toFixed(1)} ms/s (${r.brokerLoopWaitUsPerSlice.toFixed(0)} us/wake), producer ${r.producerWaitMsPerS.toFixed(1)} ms/s (${r.producerWaitUsPerSlice.toFixed(0)} us/wake); PSI cpu some ${r.psiCpuSomePct.toFixed(0)}%; load ${r.loadavg1.toFixed(1)}; broker threads user/sys s: ${Object.entries(r.brokerThreadCpu).map(([k, v]) => `${k} ${v.user}/${v.sys}`).join(', ')}`);
        }
      }
      all.push({ mode: mode.label, runs: results });
      const base = results.filter((r) => r.run === 'no-fetch baseline');
      const summary: ModeSummary = { mode: mode.label, rows: [] };
      for (const run of runs) {
        const rs = results.filter((r) => r.run === run);
        const h = pooled(rs);
        const bytes = rs.reduce((a, r) => a + r.brokerFetchedBytes, 0);
        const cpu = rs.reduce((a, r) => a + r.brokerCpuSeconds, 0);
        const onlyBytes = rs.reduce((a, r) => a + r.fetchOnlyBytes, 0);
        const onlyCpu = rs.reduce((a, r) => a + r.fetchOnlyCpuSeconds, 0);
        summary.rows.push({
          run, reps: rs.length,
          p50: h.getValueAtPercentile(50) / 1000, p99: h.getValueAtPercentile(99) / 1000,
          p999: h.getValueAtPercentile(99.9) / 1000, max: h.maxValue / 1000,
          fetchMBps: median(rs.map((r) => r.fetchMBps)),
          cpuSeconds: cpu / rs.length,
          cpuPerGiB: onlyBytes > 0 ? onlyCpu / (onlyBytes / GiB) : NaN,
          fetchOnlyMBps: onlyBytes / 1e6 / ((cfg.cpuWindowMs / 1000) * rs.length),
          cpuPerGiBWithProduce: bytes > 0 ? cpu / (bytes / GiB) : NaN,
          loopDelayP99Ms: median(rs.map((r) => r.loopDelayP99Ms)),
          loopDelayMaxMs: median(rs.map((r) => r.loopDelayMaxMs)),
          diskPerFetched: bytes > 0 ? rs.reduce((a, r) => a + r.diskReadBytes, 0) / bytes : NaN,
          p99VsBaseline: pairedRatio(rs.map((r) => r.p99), base.map((r) => r.p99)),
          latenessP99Ms: median(rs.map((r) => r.latenessP99)),
          loopWaitMsPerS: median(rs.map((r) => r.brokerLoopWaitMsPerS)),
          producerWaitMsPerS: median(rs.map((r) => r.producerWaitMsPerS)),
          psiCpuSomePct: median(rs.map((r) => r.psiCpuSomePct)),
          loopCpuUsPerFetch: median(rs.filter((r) => r.fetches > 0).map((r) => ((r.brokerLoopCpuMsPerS - median(base.map((b) => b.brokerLoopCpuMsPerS))) * (cfg.durationMs / 1000) * 1000) / r.fetches)),
        });
      }
      summaries.push(summary);
      printTable(`broker-latency [${mode.label}]: produce ack latency (ms, pooled HDR over ${cfg.reps} reps), fetch, broker CPU`,
        ['strategy', 'p50', 'p99', 'p99.9', 'max', 'p99 / baseline', 'loop delay p99/max ms', 'fetch MB/s', 'disk read / fetched', 'broker CPU s', 'CPU s/GiB (fetch only)', 'MB/s (fetch only)', 'CPU s/GiB (with produce)'],
        summary.rows.map((r) => {
          const nf = r.run === 'no-fetch baseline';
          return [r.run, r.p50, r.p99, r.p999, r.max, r.p99VsBaseline, `${r.loopDelayP99Ms.toFixed(1)}/${r.loopDelayMaxMs.toFixed(0)}`,
            nf ? '' : r.fetchMBps.toFixed(0), nf ? '' : r.diskPerFetched.toFixed(2), r.cpuSeconds,
            nf ? '' : r.cpuPerGiB.toFixed(3), nf ? '' : r.fetchOnlyMBps.toFixed(0), nf ? '' : r.cpuPerGiBWithProduce.toFixed(3)];
        }));
      printTable(`broker-latency [${mode.label}]: the scheduling floor (medians over reps; nothing is subtracted from the latencies above)`,
        ['strategy', 'producer lateness p99 ms', 'run-queue wait ms/s: broker loop', 'producer', 'PSI cpu some %', 'broker loop CPU us/fetch'],
        summary.rows.map((r) => [r.run, r.latenessP99Ms, r.loopWaitMsPerS, r.producerWaitMsPerS, r.psiCpuSomePct, r.run === 'no-fetch baseline' ? '' : r.loopCpuUsPerFetch.toFixed(0)]));
      // Per-repetition paired ratios (each rep's strategies ran back to back).
      const perRep = (a: Run_, b: Run_) => byRepOf(a).map((x, i) => x.p99 / (byRepOf(b)[i]?.p99 ?? NaN));
      const byRepOf = (k: Run_) => results.filter((r) => r.run === k);
      const repLines: string[] = [];
      if (runs.includes('pagewarm') && runs.includes('no-fetch baseline')) repLines.push(`pagewarm / baseline p99 per rep: ${perRep('pagewarm', 'no-fetch baseline').map((x) => x.toFixed(2)).join(', ')}`);
      if (runs.includes('pagewarm') && runs.includes('blocking')) repLines.push(`blocking / pagewarm p99 per rep: ${perRep('blocking', 'pagewarm').map((x) => x.toFixed(1)).join(', ')}`);
      for (const l of repLines) console.log(`  ${l}`);
      const get = (k: Run_) => summary.rows.find((r) => r.run === k);
      const byRep = (k: Run_) => results.filter((r) => r.run === k);
      const pwRow = get('pagewarm');
      if (pwRow) {
        const pooledRatio = pwRow.p99 / (get('no-fetch baseline')?.p99 ?? NaN);
        if (get('no-fetch baseline')) targets.push(target('produce p99: pagewarm / no-fetch baseline', '<= 2', pooledRatio, pooledRatio <= 2, mode.label,
          `paired median of per-rep ratios ${pwRow.p99VsBaseline.toFixed(2)}`));
        const blocking = get('blocking');
        if (blocking) {
          const r = blocking.p99 / pwRow.p99;
          targets.push(target('produce p99: blocking / pagewarm', '>= 50', r, r >= 50, mode.label,
            `paired median ${pairedRatio(byRep('blocking').map((x) => x.p99), byRep('pagewarm').map((x) => x.p99)).toFixed(1)}`));
        }
        const stream = get('stream');
        if (stream) {
          const c = pwRow.cpuPerGiB / stream.cpuPerGiB;
          targets.push(target('broker CPU per GiB: pagewarm / stream', '<= 0.5', c, c <= 0.5, mode.label,
            `${pwRow.cpuPerGiB.toFixed(2)} vs ${stream.cpuPerGiB.toFixed(2)} s/GiB (consumers alone); with produce traffic ${(pwRow.cpuPerGiBWithProduce / stream.cpuPerGiBWithProduce).toFixed(2)}`));
          // Consumers alone, never paced: the main window may be rate-capped (fetchCap).
          const only = (x: RunResult) => x.fetchOnlyBytes / 1e6 / (cfg.cpuWindowMs / 1000);
          const tp = pairedRatio(byRep('pagewarm').map(only), byRep('stream').map(only));
          targets.push(target('fetch throughput: pagewarm / stream', '>= 1', tp, tp >= 1, mode.label,
            `paired median, consumers alone (uncapped): ${pwRow.fetchOnlyMBps.toFixed(0)} vs ${stream.fetchOnlyMBps.toFixed(0)} MB/s; while producing${cfg.fetchCap[mode.name] ? ` (capped at ${cfg.fetchCap[mode.name] / 1e6} MB/s)` : ''} ${pwRow.fetchMBps.toFixed(0)} vs ${stream.fetchMBps.toFixed(0)} MB/s`));
        }
      }
    }
  } finally {
    for (const m of modes) m.throttle?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  printTargets(targets);
  for (const t of targets) if (t.note) console.log(`  ${t.name} [${t.mode}]: ${t.note}`);
  const panels: Panel[] = summaries.map((s) => ({
    title: s.mode,
    subtitle: s.rows.filter((r) => r.run !== 'no-fetch baseline').map((r) => `${r.run} ${r.fetchMBps.toFixed(0)} MB/s`).join(', '),
    groups: ['p50', 'p99', 'p99.9', 'max'],
    series: (['no-fetch baseline', 'blocking', 'stream', 'pagewarm'] as Run_[]).map((run) => {
      const r = s.rows.find((x) => x.run === run);
      return { name: run, color: COLORS[run], values: r ? [r.p50, r.p99, r.p999, r.max] : [null, null, null, null] };
    }),
  }));
  const svg = barChartSvg(panels, {
    title: 'Produce ack latency while consumers fetch cold segments (lower is better)',
    unit: 'ms',
    footnote: `${cfg.rate} records/s, ${cfg.consumers} consumers x ${cfg.fetchBytes / 1024} KiB fetches${cfg.fetchCap.unthrottled ? ` (unthrottled: capped at ${cfg.fetchCap.unthrottled / 1e6} MB/s)` : ''}, ${cfg.durationMs / 1000} s x ${cfg.reps} reps per strategy; ${cfg.priority === 'fifo' ? 'producer and broker loop SCHED_FIFO; ' : ''} ${new Date().toISOString().slice(0, 10)}, ${(await import('node:os')).cpus().length} vCPU`,
  });
  const svgPath = smoke || tag ? join(ROOT, 'bench', 'out', `broker-latency${tag ? `.${tag}` : ''}${smoke ? '.smoke' : ''}.svg`) : join(ROOT, 'docs', 'broker-latency.svg');
  mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
  writeFileSync(svgPath, svg);
  const file = saveResults(tag ? `broker-latency.${tag}` : 'broker-latency', smoke, { probe, config: cfg, missing, summaries, targets, runs: all.map((a) => ({ mode: a.mode, runs: a.runs.map(({ histogram: _h, ...rest }) => rest) })) });
  console.log(`\nchart: ${svgPath}\nresults: ${file}`);
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
