/**
 * The service of bench/restart.ts: reads Zipf-distributed ranges of 4-64 KiB
 * from its files at a fixed rate (open loop: requests arrive whether or not
 * the earlier ones are done, as a service's clients do; fs.read on libuv's
 * pool; POSIX_FADV_RANDOM so a read brings in only what it asked for), its
 * latency counted from when a request arrived (so a queue behind a disk read
 * counts), and every window reports its latency percentiles over IPC:
 * {type:'window', t (ms since the last 'mark'), n, p50, p99} in ms.
 * Messages in: {type:'mark'} restarts the clock; {type:'rate', rate} sets
 * the arrival rate from now on; disconnect ends it.
 *
 * usage (forked): service.ts CONFIG_JSON
 */
import { closeSync, openSync, read } from 'node:fs';
import { advise } from '../../lib/index';

interface Config {
  files: string[];
  fileSize: number;
  zipfS: number;
  seed: number;
  /** Requests a second. */
  rate: number;
  windowMs: number;
}

const config = JSON.parse(process.argv[2]!) as Config;
const BLOCK = 64 * 1024;
const blocksPerFile = Math.floor(config.fileSize / BLOCK);
const blocks = blocksPerFile * config.files.length;

let seed = config.seed;
function random(): number {
  // xorshift32: the same sequence every run
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}

// Zipf over the blocks, by rank; rank r is stored at a shuffled place so the
// hot blocks are spread over every file.
const cdf = new Float64Array(blocks);
let sum = 0;
for (let r = 0; r < blocks; r++) cdf[r] = sum += 1 / (r + 1) ** config.zipfS;
for (let r = 0; r < blocks; r++) cdf[r] = cdf[r]! / sum;
const place = new Uint32Array(blocks);
for (let i = 0; i < blocks; i++) place[i] = i;
for (let i = blocks - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [place[i], place[j]] = [place[j]!, place[i]!];
}
function pick(): number {
  const u = random();
  let lo = 0;
  let hi = blocks - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return place[lo]!;
}

// Random access, as a database or a log store's index reads: no readahead,
// so a miss reads what was asked for and the hot set is what was read.
const fds = config.files.map((f) => openSync(f, 'r'));
for (const fd of fds) advise(fd, 0, 0, 'random');
let mark = performance.now();
let latencies: number[] = [];
let windowStart = performance.now();

/** One request, arrived at `arrived` (performance.now()). */
function request(arrived: number): void {
  const block = pick();
  const fd = fds[Math.floor(block / blocksPerFile)]!;
  const length = 4096 * (1 + Math.floor(random() * 16)); // 4-64 KiB
  const offset = (block % blocksPerFile) * BLOCK;
  const buf = Buffer.allocUnsafe(length);
  inFlight++;
  read(fd, buf, 0, length, offset, (err) => {
    if (err) throw err;
    inFlight--;
    latencies.push(performance.now() - arrived);
    issue();
  });
}

// Arrivals every millisecond, as many as the rate asks for since the last
// tick (a late tick issues the missed ones, each at its own arrival time).
let rate = config.rate;
let issued = 0;
let began = performance.now();
// At most MAX_IN_FLIGHT reads at once: arrivals beyond wait for a free slot
// (their latency still counts from their arrival), so a stalled disk costs
// no memory.
const MAX_IN_FLIGHT = 256;
let inFlight = 0;
function issue(): void {
  if (stopped) return;
  const due = Math.floor(((performance.now() - began) * rate) / 1000);
  for (; issued < due && inFlight < MAX_IN_FLIGHT; issued++) request(began + (issued * 1000) / rate);
}
const ticker = setInterval(issue, 1);

function flush(): void {
  const now = performance.now();
  const sorted = latencies.sort((a, b) => a - b);
  const at = (p: number): number => (sorted.length === 0 ? now - windowStart : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);
  process.send!({ type: 'window', t: now - mark, n: sorted.length, p50: at(50), p99: at(99) });
  latencies = [];
  windowStart = now;
}

let stopped = false;
process.on('message', (m: { type: string }) => {
  if (m.type === 'rate') {
    rate = (m as unknown as { rate: number }).rate;
    began = performance.now();
    issued = 0;
  }
  if (m.type === 'mark') {
    flush();
    mark = performance.now();
  }
});
process.on('disconnect', () => {
  stopped = true;
  clearInterval(timer);
  clearInterval(ticker);
  for (const fd of fds) closeSync(fd);
  process.exit(0);
});
const timer = setInterval(flush, config.windowMs);
process.send!({ type: 'ready' });
