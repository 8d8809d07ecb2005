/**
 * The service of bench/restart.ts: reads Zipf-distributed ranges of 4-64 KiB
 * from its files (fs.read on libuv's pool, `concurrency` at once, closed
 * loop), and every window reports its latency percentiles over IPC:
 * {type:'window', t (ms since the last 'mark'), n, p50, p99} in ms.
 * Messages in: {type:'mark'} restarts the clock; disconnect ends it.
 *
 * usage (forked): service.ts CONFIG_JSON
 */
import { closeSync, openSync, read } from 'node:fs';

interface Config {
  files: string[];
  fileSize: number;
  zipfS: number;
  seed: number;
  concurrency: number;
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

const fds = config.files.map((f) => openSync(f, 'r'));
let mark = performance.now();
let latencies: number[] = [];
let windowStart = performance.now();

function request(buf: Buffer): void {
  const block = pick();
  const fd = fds[Math.floor(block / blocksPerFile)]!;
  const length = 4096 * (1 + Math.floor(random() * 16)); // 4-64 KiB
  const offset = (block % blocksPerFile) * BLOCK;
  const start = performance.now();
  read(fd, buf, 0, length, offset, (err) => {
    if (err) throw err;
    latencies.push(performance.now() - start);
    if (!stopped) request(buf);
  });
}

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
  if (m.type === 'mark') {
    flush();
    mark = performance.now();
  }
});
process.on('disconnect', () => {
  stopped = true;
  clearInterval(timer);
  for (const fd of fds) closeSync(fd);
  process.exit(0);
});
const timer = setInterval(flush, config.windowMs);
for (let i = 0; i < config.concurrency; i++) request(Buffer.alloc(64 * 1024));
process.send!({ type: 'ready' });
