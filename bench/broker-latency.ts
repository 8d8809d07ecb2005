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
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
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
    const broker = forkTs(join(ROOT, 'examples', 'broker', 'server.ts'), ['--dir', dir, '--strategy', strategy, '--segment-bytes', String(cfg.segmentBytes)]);
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
    const startAt = Date.now() + 300;
    const window = { startAt, warmupMs: cfg.warmupMs, durationMs: cfg.durationMs };
    const pResult = request<ProducerResult>(producer, { port, rate: cfg.rate, recordBytes: cfg.recordBytes, ...window } satisfies ProducerJob, 'result', cfg.warmupMs + cfg.durationMs + 60_000);
    const cResults = consumers.map((c, i) => request<ConsumerResult>(c, {
      port, segments: segs, first: Math.floor((i * segs.length) / Math.max(1, nConsumers)), maxBytes: cfg.fetchBytes, ...window,
      runMs: cfg.warmupMs + cfg.durationMs + (nConsumers ? cfg.cpuWindowMs + 500 : 0),
    } satisfies ConsumerJob, 'result', cfg.warmupMs + cfg.durationMs + cfg.cpuWindowMs + 60_000));
    type Stats = { cpuSeconds: number; fetchedBytes: number; loopDelayMs: { p99: number; max: number } };
    await sleep(startAt + cfg.warmupMs - Date.now());
    const s0 = await request<Stats>(broker, { type: 'stats' }, 'stats', 30_000);
    const io0 = readBytes(broker.pid!);
    await sleep(startAt + cfg.warmupMs + cfg.durationMs - Date.now());
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
    reps: flags.reps ?? (smoke ? 1 : 3),
  };
  const { available, missing } = availableStrategies();
  const runs: Run_[] = ['no-fetch baseline', ...(['blocking', 'stream', 'pagewarm'] as const).filter((s) => available.includes(s))];
  for (const [s, why] of Object.entries(missing)) console.log(`strategy ${s} skipped: ${why}`);
  const { modes, probe } = diskModes(flags);
  const dir = join(TMP_DIR, `pagewarm-bench-broker-${process.pid}`);
  const all: { mode: string; runs: RunResult[] }[] = [];
  const summaries: ModeSummary[] = [];
  const targets: Target[] = [];
  try {
    const segs = prepareLog(dir, cfg);
    for (const mode of modes) {
      console.log(`\nbroker-latency: ${mode.label}; producer ${cfg.rate} records/s of ${cfg.recordBytes} B; ${cfg.consumers} consumers fetching ${cfg.fetchBytes / 1024} KiB at a time from ${cfg.segments} x ${cfg.segmentBytes / MiB} MiB evicted segments; ${cfg.durationMs / 1000} s measured after ${cfg.warmupMs / 1000} s; ${cfg.reps} repetitions`);
      const results: RunResult[] = [];
      for (let rep = 0; rep < cfg.reps; rep++) {
        for (const run of rotate(runs, rep)) {
          const r = await runOnce(run, rep, mode, dir, segs, cfg);
          results.push(r);
          console.log(`  rep ${rep + 1} ${run.padEnd(17)} p50 ${r.p50.toFixed(2)} p99 ${r.p99.toFixed(2)} p99.9 ${r.p999.toFixed(2)} max ${r.max.toFixed(1)} ms; fetch ${r.fetchMBps.toFixed(0)} MB/s; broker CPU ${r.brokerCpuSeconds.toFixed(2)} s; producer lateness p99 ${r.latenessP99.toFixed(2)} ms; broker loop delay p99 ${r.loopDelayP99Ms.toFixed(1)} max ${r.loopDelayMaxMs.toFixed(1)} ms; disk reads ${(r.diskReadBytes / 1e6 / (cfg.durationMs / 1000)).toFixed(0)} MB/s`);
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
      const get = (k: Run_) => summary.rows.find((r) => r.run === k);
      const byRep = (k: Run_) => results.filter((r) => r.run === k);
      const pwRow = get('pagewarm');
      if (pwRow) {
        const pooledRatio = pwRow.p99 / get('no-fetch baseline')!.p99;
        targets.push(target('produce p99: pagewarm / no-fetch baseline', '<= 2', pooledRatio, pooledRatio <= 2, mode.label,
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
          const tp = pairedRatio(byRep('pagewarm').map((x) => x.fetchMBps), byRep('stream').map((x) => x.fetchMBps));
          targets.push(target('fetch throughput: pagewarm / stream', '>= 1', tp, tp >= 1, mode.label,
            `${pwRow.fetchMBps.toFixed(0)} vs ${stream.fetchMBps.toFixed(0)} MB/s`));
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
    footnote: `${cfg.rate} records/s, ${cfg.consumers} consumers x ${cfg.fetchBytes / 1024} KiB fetches, ${cfg.durationMs / 1000} s x ${cfg.reps} reps per strategy; ${new Date().toISOString().slice(0, 10)}, ${(await import('node:os')).cpus().length} vCPU`,
  });
  const svgPath = smoke ? join(ROOT, 'bench', 'out', 'broker-latency.smoke.svg') : join(ROOT, 'docs', 'broker-latency.svg');
  mkdirSync(join(ROOT, 'bench', 'out'), { recursive: true });
  writeFileSync(svgPath, svg);
  const file = saveResults('broker-latency', smoke, { probe, config: cfg, missing, summaries, targets, runs: all.map((a) => ({ mode: a.mode, runs: a.runs.map(({ histogram: _h, ...rest }) => rest) })) });
  console.log(`\nchart: ${svgPath}\nresults: ${file}`);
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
