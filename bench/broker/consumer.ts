/**
 * broker-latency's consumer process: FETCHes old segments sequentially,
 * `maxBytes` at a time, one request in flight, discarding the bytes. After
 * each fetch it evicts the range it just received, and when it leaves a
 * segment it evicts the whole segment (posix_fadvise DONTNEED on its own
 * descriptor), so every pass over the old segments finds them cold, as for a
 * catch-up reader on a busy broker. (The whole-segment eviction is needed:
 * this kernel caches file data in large folios, and DONTNEED on a 1 MiB range
 * drops no folio that extends past the range: after a pass of per-range
 * evictions, 48 of 64 MiB were still resident.)
 *
 * Started with fork(); receives its job as an IPC message, replies with the
 * bytes fetched inside the measurement window and exits.
 */
import { closeSync, openSync } from 'node:fs';
import * as pw from '../../lib/index';
import { BrokerClient } from '../../examples/broker/client';

export interface ConsumerJob {
  port: number;
  segments: { id: number; size: number; path: string }[];
  /** Index into `segments` to start at. */
  first: number;
  maxBytes: number;
  startAt: number;
  warmupMs: number;
  durationMs: number;
  /** How long to keep fetching from startAt (>= warmupMs + durationMs). */
  runMs: number;
  /**
   * Fetch at most this many bytes per second (paced from startAt) until the
   * end of the measurement window; 0 or absent: as fast as the broker
   * answers. After the window (the consumers-alone phase) fetching is never
   * paced.
   */
  paceBytesPerSec?: number;
}

export interface ConsumerResult {
  type: 'result';
  bytes: number;
  fetches: number;
  totalBytes: number;
}

async function run(job: ConsumerJob): Promise<ConsumerResult> {
  const client = await BrokerClient.connect(job.port, '127.0.0.1', { discardFetched: true });
  const fds = job.segments.map((s) => openSync(s.path, 'r'));
  const from = job.startAt + job.warmupMs;
  const end = from + job.durationMs;
  const stop = job.startAt + Math.max(job.runMs, job.warmupMs + job.durationMs);
  let bytes = 0;
  let fetches = 0;
  let totalBytes = 0;
  let i = job.first;
  let offset = 0;
  while (Date.now() < job.startAt) await new Promise((r) => setTimeout(r, Math.max(1, job.startAt - Date.now())));
  try {
    const pace = job.paceBytesPerSec ?? 0;
    let next = job.startAt; // when the next fetch may start (pacing; at most 20 ms of credit, so no catch-up bursts)
    while (Date.now() < stop) {
      if (pace > 0 && Date.now() < end) {
        next = Math.max(next, Date.now() - 20);
        if (next > Date.now()) await new Promise((r) => setTimeout(r, next - Date.now()));
        next += (job.maxBytes / pace) * 1000;
      }
      const seg = job.segments[i];
      const tf = Date.now();
      const n = await client.fetchCount(seg.id, offset, job.maxBytes);
      if (process.env.PW_DEBUG) console.error(`consumer ${process.pid} fetch ${seg.id}:${offset} -> ${n} in ${Date.now() - tf} ms`);
      const t = Date.now();
      totalBytes += n;
      if (t >= from && t < end) {
        bytes += n;
        fetches++;
      }
      pw.evict(fds[i], offset, n);
      offset += n;
      if (n === 0 || offset >= seg.size) {
        pw.evict(fds[i]);
        i = (i + 1) % job.segments.length;
        offset = 0;
      }
    }
  } finally {
    client.destroy();
    fds.forEach((fd) => closeSync(fd));
  }
  return { type: 'result', bytes, fetches, totalBytes };
}

process.send!({ type: 'ready' });
process.once('message', (job: ConsumerJob) => {
  run(job).then((r) => {
    process.send!(r, () => process.exit(0));
  }, (err) => {
    console.error('consumer:', err);
    process.exit(1);
  });
});
