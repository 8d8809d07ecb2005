/**
 * The service of bench/restart.ts: reads Zipf-distributed records of 4-64 KiB
 * (each read whole, at its own place in the files) at a fixed rate (open loop: requests arrive whether or not
 * the earlier ones are done, as a service's clients do; fs.read on libuv's
 * pool; POSIX_FADV_RANDOM so a read brings in only what it asked for), its
 * latency counted from the tick at which a request arrived (so a queue behind a disk read
 * counts), and every window reports its latency percentiles over IPC:
 * {type:'window', t (ms since the last 'mark'), n, bytes (read), p50, p99 (ms), diskBytes, cpuMs (every thread),
 * lat (the window's latencies in ms, sorted)}.
 * Messages in: {type:'mark'} restarts the clock; {type:'rate', rate} sets
 * the arrival rate from now on; disconnect ends it.
 *
 * usage (forked): service.ts CONFIG_JSON
 */
import { closeSync, openSync, read, readFileSync } from 'node:fs';
import { advise } from '../../lib/index';

interface Config {
  files: string[];
  fileSize: number;
  /** Records the service reads, each at its own 64 KiB slot somewhere in the files. */
  records: number;
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
const records = Math.min(config.records, blocks);

let seed = config.seed;
function random(): number {
  // xorshift32: the same sequence every run
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}

// Zipf over the records, by rank; record r lies at a shuffled slot, so the
// records are spread over every file, and has its own size (4-64 KiB, as a
// database row or a log segment's index entry has), read whole each time.
const cdf = new Float64Array(records);
let sum = 0;
for (let r = 0; r < records; r++) cdf[r] = sum += 1 / (r + 1) ** config.zipfS;
for (let r = 0; r < records; r++) cdf[r] = cdf[r]! / sum;
const place = new Uint32Array(blocks);
for (let i = 0; i < blocks; i++) place[i] = i;
for (let i = blocks - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [place[i], place[j]] = [place[j]!, place[i]!];
}
const size = new Uint32Array(records);
for (let r = 0; r < records; r++) size[r] = 4096 * (1 + Math.floor(random() * 16));
/** A record by Zipf: its slot (a block) and its size. */
function pick(): [number, number] {
  const u = random();
  let lo = 0;
  let hi = records - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cdf[mid]! < u) lo = mid + 1;
    else hi = mid;
  }
  return [place[lo]!, size[lo]!];
}

// Random access, as a database or a log store's index reads: no readahead,
// so a miss reads what was asked for and the hot set is what was read.
const fds = config.files.map((f) => openSync(f, 'r'));
for (const fd of fds) advise(fd, 0, 0, 'random');
let mark = performance.now();
let latencies: number[] = [];
let bytesRead = 0;
let windowStart = performance.now();

/** One request, arrived at `arrived` (performance.now()). */
function request(arrived: number): void {
  const [block, length] = pick();
  const fd = fds[Math.floor(block / blocksPerFile)]!;
  const offset = (block % blocksPerFile) * BLOCK;
  const buf = buffers.pop()!; // one per read in flight: issue() never starts more
  inFlight++;
  read(fd, buf, 0, length, offset, (err) => {
    if (err) throw err;
    buffers.push(buf);
    inFlight--;
    bytesRead += length;
    latencies.push(performance.now() - arrived);
    issue();
  });
}

// Arrivals every millisecond, as many as the rate asks for since the last
// tick.
let rate = config.rate;
let issued = 0;
let began = performance.now();
// At most MAX_IN_FLIGHT reads at once: arrivals beyond wait for a free slot
// (their latency still counts from their arrival), so a stalled disk costs
// no memory.
const MAX_IN_FLIGHT = 256;
let inFlight = 0;
/**
 * The reads' buffers, made once and reused: a new 4-64 KiB Buffer per read
 * (136 MB a second of external memory at 4,000 reads) put V8 into garbage
 * collection for "external memory pressure" every few milliseconds after a
 * backlog, a mark-compact's step of up to 9 ms each time, which the
 * service's p99 then showed as 10-15 ms with no disk read behind it.
 */
const buffers: Buffer[] = Array.from({ length: MAX_IN_FLIGHT }, () => Buffer.allocUnsafeSlow(64 * 1024));
// A request arrives at the tick that finds it due (the clock's granularity
// is the harness's, not the service's: counting from the ideal instant would
// add up to a tick, and a timer's lateness, to every request). One that
// finds no free slot waits in `pending` with that arrival.
const pending: number[] = [];
let next = 0; // pending[next] is the oldest waiting arrival
function arrive(): void {
  if (stopped) return;
  const now = performance.now();
  const due = Math.floor(((now - began) * rate) / 1000);
  for (; issued < due; issued++) pending.push(now);
  issue();
}
function issue(): void {
  while (next < pending.length && inFlight < MAX_IN_FLIGHT) request(pending[next++]!);
  if (next > 4096 && next * 2 > pending.length) {
    pending.splice(0, next);
    next = 0;
  }
}
const ticker = setInterval(arrive, 1);

/** Bytes this process (every thread) had the disk read for it: its misses, and readahead they started. */
function readBytes(): number {
  return Number(/read_bytes: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? 0);
}
let lastDisk = readBytes();
let lastCpu = 0;

/** Reports the window now ending; `beforeMark`: it ends at a mark (the harness drops it). */
function flush(beforeMark = false): void {
  const now = performance.now();
  const sorted = latencies.sort((a, b) => a - b);
  const at = (p: number): number => (sorted.length === 0 ? now - windowStart : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);
  const disk = readBytes();
  const cpu = process.cpuUsage();
  const cpuMs = (cpu.user + cpu.system - lastCpu) / 1000;
  lastCpu = cpu.user + cpu.system;
  // The latencies themselves too (to the microsecond), so the harness can take percentiles over spans of windows.
  const lat = sorted.map((x) => Math.round(x * 1000) / 1000);
  process.send!({ type: 'window', beforeMark, t: now - mark, n: sorted.length, bytes: bytesRead, p50: at(50), p99: at(99), diskBytes: disk - lastDisk, cpuMs, lat });
  bytesRead = 0;
  lastDisk = disk;
  latencies = [];
  windowStart = now;
}

let stopped = false;
process.on('message', (m: { type: string }) => {
  if (m.type === 'rate') {
    rate = (m as unknown as { rate: number }).rate;
    began = performance.now();
    issued = 0;
    pending.length = next = 0; // a new phase: the old one's backlog is dropped
  }
  if (m.type === 'mark') {
    flush(true);
    mark = performance.now();
    // Windows from the mark on: their ends fall at whole windows after it.
    clearInterval(timer);
    timer = setInterval(() => flush(), config.windowMs);
  }
});
process.on('disconnect', () => {
  stopped = true;
  clearInterval(timer);
  clearInterval(ticker);
  for (const fd of fds) closeSync(fd);
  process.exit(0);
});
let timer = setInterval(() => flush(), config.windowMs);
process.send!({ type: 'ready' });
