/**
 * A static file server that exports pagewarm's numbers as Prometheus text on
 * /metrics, from pagewarm's tracing channels (node:diagnostics_channel) and
 * stats(): calls and failures per operation, bytes read from the disk (the
 * disk waits the event loop was spared), time spent waiting for one of
 * pagewarm's threads, and call durations as a histogram. No dependency: the
 * exposition format is a few lines of text.
 *
 *   npm run example:metrics -- [root] [port]
 *   (node dist/examples/metrics.js [root] [port]; then curl localhost:8080/metrics)
 */
import * as diagnostics from 'node:diagnostics_channel';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { serveFile, stats, tracingChannels, type TraceContext, type TracedOperation } from 'pagewarm';

const root = resolve(process.argv[2] ?? '.');
const port = Number(process.argv[3] ?? 8080);

/** Upper bounds of the duration histogram, in seconds. */
const BUCKETS = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];

interface OperationMetrics {
  calls: number;
  errors: number;
  fromDiskBytes: number;
  queuedSeconds: number;
  durationSum: number;
  durationCounts: number[]; // per bucket, then +Inf
}

const metrics = new Map<TracedOperation, OperationMetrics>();

for (const [operation, name] of Object.entries(tracingChannels) as Array<[TracedOperation, string]>) {
  const m: OperationMetrics = { calls: 0, errors: 0, fromDiskBytes: 0, queuedSeconds: 0, durationSum: 0, durationCounts: new Array(BUCKETS.length + 1).fill(0) };
  metrics.set(operation, m);
  // One handler for sync calls (end) and async ones (asyncEnd): a call that
  // has asyncEnd also has end, which is skipped for it (no result yet).
  const settled = (ctx: TraceContext): void => {
    m.calls++;
    if (ctx.error !== undefined) m.errors++;
    m.fromDiskBytes += ctx.fromDisk ?? 0;
    m.queuedSeconds += (ctx.queuedMs ?? 0) / 1000;
    const seconds = (ctx.durationMs ?? 0) / 1000;
    m.durationSum += seconds;
    const bucket = BUCKETS.findIndex((le) => seconds <= le);
    m.durationCounts[bucket < 0 ? BUCKETS.length : bucket]!++;
  };
  const pending = new WeakSet<object>();
  diagnostics.tracingChannel<unknown, TraceContext>(name).subscribe({
    start: () => undefined,
    end: (ctx) => {
      // An async call publishes end when it returns its promise, before it settles.
      if (!pending.has(ctx) && ctx.durationMs !== undefined) settled(ctx);
    },
    asyncStart: (ctx) => {
      pending.add(ctx);
    },
    asyncEnd: settled,
    error: () => undefined,
  });
}

function exposition(): string {
  const lines: string[] = [];
  const family = (name: string, type: string, help: string): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  family('pagewarm_calls_total', 'counter', 'Calls by operation, settled.');
  for (const [op, m] of metrics) lines.push(`pagewarm_calls_total{operation="${op}"} ${m.calls}`);
  family('pagewarm_errors_total', 'counter', 'Calls by operation that failed (aborts included).');
  for (const [op, m] of metrics) lines.push(`pagewarm_errors_total{operation="${op}"} ${m.errors}`);
  family('pagewarm_from_disk_bytes_total', 'counter', 'Bytes that were not in the page cache when pagewarm read them.');
  for (const [op, m] of metrics) lines.push(`pagewarm_from_disk_bytes_total{operation="${op}"} ${m.fromDiskBytes}`);
  family('pagewarm_queued_seconds_total', 'counter', "Time the calls' jobs waited for one of pagewarm's threads.");
  for (const [op, m] of metrics) lines.push(`pagewarm_queued_seconds_total{operation="${op}"} ${m.queuedSeconds}`);
  family('pagewarm_duration_seconds', 'histogram', 'Call durations, from the call to its settlement.');
  for (const [op, m] of metrics) {
    let cumulative = 0;
    BUCKETS.forEach((le, i) => {
      cumulative += m.durationCounts[i]!;
      lines.push(`pagewarm_duration_seconds_bucket{operation="${op}",le="${le}"} ${cumulative}`);
    });
    cumulative += m.durationCounts[BUCKETS.length]!;
    lines.push(`pagewarm_duration_seconds_bucket{operation="${op}",le="+Inf"} ${cumulative}`);
    lines.push(`pagewarm_duration_seconds_sum{operation="${op}"} ${m.durationSum}`);
    lines.push(`pagewarm_duration_seconds_count{operation="${op}"} ${m.calls}`);
  }
  // Process-wide, all threads and workers: pagewarm's own counters and gauges.
  const s = stats();
  family('pagewarm_process_from_disk_bytes_total', 'counter', 'stats().fromDiskBytes: every thread and worker of the process.');
  lines.push(`pagewarm_process_from_disk_bytes_total ${s.fromDiskBytes}`);
  family('pagewarm_process_jobs_total', 'counter', "stats().jobs: jobs handed to pagewarm's threads.");
  lines.push(`pagewarm_process_jobs_total ${s.jobs}`);
  family('pagewarm_jobs_queued', 'gauge', 'Jobs waiting for a thread now.');
  lines.push(`pagewarm_jobs_queued ${s.queued}`);
  family('pagewarm_jobs_active', 'gauge', 'Jobs running a slice now.');
  lines.push(`pagewarm_jobs_active ${s.active}`);
  family('pagewarm_sends_waiting', 'gauge', 'Sends waiting for their socket to become writable.');
  lines.push(`pagewarm_sends_waiting ${s.waiting}`);
  return `${lines.join('\n')}\n`;
}

const server = http.createServer((req, res) => {
  if (req.url === '/metrics') {
    const body = exposition();
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  serveFile(req, res, req.url ?? '/', { root }).catch(() => res.destroy());
});

server.listen(port, () => {
  const { port: bound } = server.address() as AddressInfo;
  console.log(`serving ${root} on http://localhost:${bound}/ (metrics: http://localhost:${bound}/metrics)`);
});
