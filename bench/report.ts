/**
 * `npm run bench:report`: prints Markdown tables from the results the
 * benchmarks saved in bench/out/*.json (for BENCHMARKS.md and the README
 * section). `--smoke` reads the smoke results instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, median, OUT_DIR, pairedRatio, type Machine, type Target } from './lib/common';

const smoke = process.argv.includes('--smoke');

function load<T>(name: string): (T & { machine: Machine; targets: Target[] }) | null {
  const file = join(OUT_DIR, `${name}${smoke ? '.smoke' : ''}.json`);
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null;
}

function table(headers: string[], rows: (string | number)[][]): string {
  const cell = (c: string | number) => (typeof c === 'number' ? fmt(c) : c);
  return [
    `| ${headers.join(' | ')} |`,
    `| ${headers.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

function targets(ts: Target[]): string {
  return table(['target', 'goal', 'measured', 'result'], ts.map((t) => [
    `${t.name}${t.mode ? ` (${t.mode})` : ''}${t.note ? `; ${t.note}` : ''}`, t.goal, t.value, t.met ? '**met**' : '**missed**',
  ]));
}

function header(name: string, m: Machine): string {
  return `### ${name}\n\n_${m.date.slice(0, 16).replace('T', ' ')} UTC; ${m.nproc} vCPU ${m.cpu}; Linux ${m.kernel}; Node ${m.node}; files on ${m.fs}${m.loadavg1 === undefined ? '' : `; load average ${m.loadavg1.toFixed(1)} at the end (shared machine)`}_\n`;
}

const out: string[] = [];

interface BrokerRow { run: string; reps: number; p50: number; p99: number; p999: number; max: number; fetchMBps: number; cpuSeconds: number; cpuPerGiB: number; fetchOnlyMBps: number; cpuPerGiBWithProduce: number; p99VsBaseline: number; loopDelayP99Ms?: number; loopDelayMaxMs?: number; diskPerFetched?: number }
const broker = load<{ config: { rate: number; recordBytes: number; consumers: number; fetchBytes: number; segments: number; segmentBytes: number; durationMs: number; reps: number }; summaries: { mode: string; rows: BrokerRow[] }[]; missing: Record<string, string> }>('broker-latency');
if (broker) {
  const c = broker.config;
  out.push(header('broker-latency', broker.machine));
  out.push(`Producer: ${c.rate} records/s of ${c.recordBytes} B, ack latency from send to ack. ${c.consumers} consumers fetching ${c.fetchBytes / 1024} KiB at a time from ${c.segments} x ${c.segmentBytes / 2 ** 20} MiB evicted segments. ${c.durationMs / 1000} s measured per run, ${c.reps} runs per strategy, rotated.\n`);
  for (const s of broker.summaries) {
    out.push(`**${s.mode}** (produce latency in ms, pooled HDR histogram)\n`);
    out.push(table(['strategy', 'p50', 'p99', 'p99.9', 'max', 'p99 / baseline', 'broker loop delay p99 / max', 'fetch MB/s', 'disk read / fetched', 'broker CPU s/GiB (consumers alone)', 'fetch MB/s (consumers alone)', 'broker CPU s/GiB (with produce)'],
      s.rows.map((r) => {
        const nf = r.run === 'no-fetch baseline';
        return [r.run, r.p50, r.p99, r.p999, r.max, r.p99VsBaseline,
          r.loopDelayP99Ms === undefined ? 'n/a' : `${r.loopDelayP99Ms.toFixed(1)} / ${(r.loopDelayMaxMs ?? NaN).toFixed(0)}`,
          nf ? '' : r.fetchMBps.toFixed(0), nf || r.diskPerFetched === undefined ? '' : r.diskPerFetched.toFixed(2), nf ? '' : r.cpuPerGiB.toFixed(3),
          nf ? '' : (r.fetchOnlyMBps ?? NaN).toFixed(0), nf ? '' : (r.cpuPerGiBWithProduce ?? NaN).toFixed(3)];
      })));
    out.push('');
  }
  for (const [k, v] of Object.entries(broker.missing ?? {})) out.push(`- \`${k}\` not measured: ${v}`);
  out.push(targets(broker.targets), '');
}

interface WarmSample { wall: number; cpu: number; resident: number; settled?: number }
const warm = load<{ results: { mode: string; state: string; size: number; samples: Record<string, WarmSample[]> }[]; fastPath: { range: string; method: string; usPerCall: number; fastPathHits: number; calls: number }[] }>('warm');
if (warm) {
  out.push(header('warm', warm.machine));
  for (const r of warm.results) {
    const ref = r.samples['C sendfile ref'] ?? [];
    const fsr = r.samples['fs.read 1 MiB'];
    out.push(`**${r.state}, ${r.size / 2 ** 20} MiB, ${r.mode}** (medians of ${r.samples['prepareForRead'].length} paired runs)\n`);
    out.push(table(['method', 'wall ms', 'GB/s', 'CPU ms', 'resident after', 'wall / C ref', 'CPU / fs.read'],
      Object.entries(r.samples).map(([m, s]) => [m, median(s.map((x) => x.wall)) * 1000, r.size / median(s.map((x) => x.wall)) / 1e9,
        median(s.map((x) => x.cpu)) * 1000,
        `${(Math.min(...s.map((x) => x.resident)) * 100).toFixed(1)}%${s[0]?.settled !== undefined ? ` (${(median(s.map((x) => x.settled ?? NaN)) * 100).toFixed(0)}% once settled)` : ''}`,
        ref.length ? pairedRatio(s.map((x) => x.wall), ref.map((x) => x.wall)) : NaN,
        pairedRatio(s.map((x) => x.cpu), fsr.map((x) => x.cpu))])));
    out.push('');
  }
  if (warm.fastPath.length) {
    out.push('Per call on an already resident range (awaited one after another):\n');
    out.push(table(['range', 'call', 'us per call', 'fast-path hits'], warm.fastPath.map((f) => [f.range, f.method, f.usPerCall, `${f.fastPathHits}/${f.calls}`])));
    out.push('');
  }
  out.push(targets(warm.targets), '');
}

const iso = load<{ results: { mode: string; fileBytes: number; runs: { situation: string; stats: number; p50: number; p99: number; p999: number; max: number; loadMs: number; loopDelayP99Ms: number }[] }[] }>('isolation');
if (iso) {
  out.push(header('isolation', iso.machine));
  for (const r of iso.results) {
    out.push(`**${r.mode}**, 8 x ${r.fileBytes / 2 ** 20} MiB cold files; fs.promises.stat latency in us (medians over repetitions)\n`);
    const idle = r.runs.filter((x) => x.situation === 'idle');
    const label: Record<string, string> = {
      idle: 'idle', pagewarm: 'prepareForRead warm-ups', libuv: 'fs.read warm-ups (libuv pool)',
      'C processes': 'the same I/O from 4 C processes (control)',
    };
    out.push(table(['during', 'p50', 'p99', 'p99.9', 'p99 / idle p99', 'load ms'], Object.keys(label).filter((s) => r.runs.some((x) => x.situation === s)).map((s) => {
      const rs = r.runs.filter((x) => x.situation === s);
      return [label[s],
        median(rs.map((x) => x.p50)), median(rs.map((x) => x.p99)), median(rs.map((x) => x.p999)),
        pairedRatio(rs.map((x) => x.p99), idle.map((x) => x.p99)), s === 'idle' ? '' : median(rs.map((x) => x.loadMs)).toFixed(0)];
    })));
    out.push('');
  }
  out.push(targets(iso.targets), '');
}

interface SendSample { wall: number; cpu: number; bytes: number }
const send = load<{ sizeBytes: number; samples: Record<string, SendSample[]>; vethSamples?: Record<string, SendSample[]> | null; vethSkipped?: string | null }>('send');
if (send) {
  out.push(header('send', send.machine));
  const tput = (s: SendSample[]) => s.map((x) => x.bytes / x.wall);
  const nets: [string, Record<string, SendSample[]> | null | undefined][] = [
    ['on 127.0.0.1', send.samples],
    ['in another network namespace, over a veth pair (MTU 1500)', send.vethSamples],
  ];
  for (const [where, samples] of nets) {
    const best = samples?.['pipeline, 1 MiB chunks'];
    if (!samples || !best?.length) continue;
    out.push(`Hot ${send.sizeBytes / 2 ** 20} MiB file to a discarding C receiver ${where} (medians of ${best.length} rotated runs)\n`);
    out.push(table(['method', 'GB/s', 'sender CPU s/GiB', 'GB/s vs pipeline 1 MiB', 'CPU vs pipeline 1 MiB'],
      Object.entries(samples).filter(([, s]) => s.length).map(([m, s]) => [m, median(tput(s)) / 1e9, median(s.map((x) => x.cpu)) / (send.sizeBytes / 2 ** 30),
        pairedRatio(tput(s), tput(best)), pairedRatio(s.map((x) => x.cpu), best.map((x) => x.cpu))])), '');
  }
  if (send.vethSkipped) out.push(`veth run skipped: ${send.vethSkipped}\n`);
  out.push(targets(send.targets), '');
}

interface HttpSample { server: string; small: { requestsPerSec: number; bytesPerSec: number; errors: number }; large: { requestsPerSec: number; bytesPerSec: number; errors: number }; smallCpuPerReqUs: number; largeCpuPerGiB: number }
const http = load<{ loadTool: string; nginxVersion: string | null; largeSizeBytes: number; samples: HttpSample[] }>('http');
if (http) {
  out.push(header('http', http.machine));
  out.push(`Load: ${http.loadTool}; ${http.nginxVersion ?? 'no nginx'}; hot files.\n`);
  const servers = [...new Set(http.samples.map((s) => s.server))];
  const ng = http.samples.filter((s) => s.server === 'nginx');
  out.push(table(['server', '64 KiB req/s', 'vs nginx', 'server CPU us/req', `${http.largeSizeBytes / 2 ** 20} MiB GB/s`, 'vs nginx', 'server CPU s/GiB'],
    servers.map((k) => {
      const s = http.samples.filter((x) => x.server === k);
      return [k, median(s.map((x) => x.small.requestsPerSec)), ng.length ? pairedRatio(s.map((x) => x.small.requestsPerSec), ng.map((x) => x.small.requestsPerSec)) : NaN,
        median(s.map((x) => x.smallCpuPerReqUs)), median(s.map((x) => x.large.bytesPerSec)) / 1e9,
        ng.length ? pairedRatio(s.map((x) => x.large.bytesPerSec), ng.map((x) => x.large.bytesPerSec)) : NaN, median(s.map((x) => x.largeCpuPerGiB))];
    })));
  out.push('', targets(http.targets), '');
}

interface FilesPair { pagewarm: number[]; vmtouch: number[] }
const files = load<{ mode: string; vmtouch: string; results: Record<string, { bytes: number; pairs: Record<'warm' | 'stat' | 'evict', FilesPair> }>; walks: Record<string, number[]>; perFile: Record<string, number[]> }>('files');
if (files) {
  out.push(header('files', files.machine));
  out.push(`${files.vmtouch} as the reference; ${files.mode}.\n`);
  const rows: (string | number)[][] = [];
  for (const [n, r] of Object.entries(files.results)) {
    for (const op of ['warm', 'stat', 'evict'] as const) {
      const p = r.pairs[op];
      rows.push([`${Number(n).toLocaleString('en')} files, ${(r.bytes / 2 ** 20).toFixed(0)} MiB`, op, median(p.pagewarm), median(p.vmtouch), pairedRatio(p.pagewarm, p.vmtouch)]);
    }
  }
  out.push(table(['tree', 'command', 'pagewarm s', 'vmtouch s', 'pagewarm / vmtouch'], rows), '');
  out.push(table(['walk', 'ms'], Object.entries(files.walks).map(([k, v]) => [k, median(v)])), '');
  out.push(table(['call', 'us per file'], Object.entries(files.perFile).map(([k, v]) => [k, median(v)])), '');
  out.push(targets(files.targets), '');
}

interface CopyingRun { gib: number; gcs: number; gcMs: number; maxMs: number; cpuS: number; seconds: number }
const copying = load<{ servers: { name: string; kind: string }[]; fileBytes: number; connections: number; seconds: number; reps: number; runs: Record<string, CopyingRun[]> }>('copying');
if (copying) {
  out.push(header('copying', copying.machine));
  out.push(`${copying.fileBytes / 2 ** 20} MiB hot file, ${copying.connections} connections for ${copying.seconds} s, ${copying.reps} reps, medians.\n`);
  out.push(table(['server', 'GB/s', 'GCs per GiB', 'GC ms per GiB', 'longest GC ms', 'CPU s per GiB'], copying.servers.map(({ name, kind }) => {
    const rs = copying.runs[kind] ?? [];
    const m = (f: (r: CopyingRun) => number): number => median(rs.map(f));
    return [name, m((r) => (r.gib * 2 ** 30) / r.seconds / 1e9), m((r) => r.gcs / r.gib), m((r) => r.gcMs / r.gib), m((r) => r.maxMs), m((r) => r.cpuS / r.gib)];
  })), '');
  out.push(targets(copying.targets), '');
}

console.log(out.join('\n'));
