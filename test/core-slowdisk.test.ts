// Behaviour under a slow disk (a cgroup v1 blkio throttle where this machine
// allows it): aborting mid-range, fairness between large and small warm-ups,
// a responsive event loop, and a libuv threadpool left free for others.
//
// This whole process is moved into the throttled cgroup, so these tests live
// in a file of their own.
//
// Timing is reported (t.comment), not asserted: the latency claims are
// bench/isolation.ts's; here each claim is checked as behaviour.
//
// On the portable fallback (capabilities().native false) evict is a no-op
// (files start cold through makeCold), residency is 'unknown' (fincore judges), and
// the reads run on the libuv pool, not on pagewarm-N threads: there the
// isolation test checks what the fallback documents instead (at most
// `threads` reads at once, so a smaller `threads` leaves libuv threads free).
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import { stat } from 'node:fs/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { prepareForRead, residencySync, configure, stats, capabilities } from '../lib/index';
import { scratchDir, makeFile, slowDisk, threadIds, fincoreBytes, makeCold } from './helpers';

const MiB = 1 << 20;
const caps = capabilities();
const dir = scratchDir();
const big = makeFile(join(dir, 'big'), 256 * MiB);
const disk = slowDisk(big, 50_000_000);
t.teardown(() => disk.restore());
t.comment(`disk mode: ${disk.mode}`);

// Unthrottled, the same tests run against a fast disk: still valid, less telling.
const coldFiles = Array.from({ length: 8 }, (_, i) => makeFile(join(dir, `cold${i}`), (disk.throttled ? 16 : 128) * MiB));

/** Opens a file and makes it cold (a precondition: see makeCold). */
async function openCold(t: Test, path: string): Promise<number> {
  const fd = fs.openSync(path, 'r');
  await makeCold(t, fd);
  return fd;
}

t.test('abort mid-range: rejects within about a chunk, what was warmed stays warm', async (t) => {
  configure({ chunkSize: 1 * MiB });
  t.teardown(() => configure({ chunkSize: 8 * MiB }));
  const fd = await openCold(t, big);
  t.teardown(() => fs.closeSync(fd));
  const controller = new AbortController();
  const started = process.hrtime.bigint();
  const warming = prepareForRead(fd, 0, undefined, { signal: controller.signal });
  await new Promise((resolve) => setTimeout(resolve, disk.throttled ? 300 : 20));
  const reason = new Error('stop');
  const warmedAtAbort = stats().warmedBytes;
  controller.abort(reason);
  const abortedAt = process.hrtime.bigint();
  const err = await warming.catch((e) => e);
  const settledAfter = Number(process.hrtime.bigint() - abortedAt) / 1e6;
  t.match(err, { name: 'AbortError', code: 'ABORT_ERR', cause: reason }, 'rejects with an AbortError');
  if (caps.native) {
    const r = residencySync(fd);
    t.ok(r.residentPages! > 0, `what was warmed stays warm (${r.residentPages} pages)`);
    t.ok(r.residentPages! < r.pages, 'the rest was not warmed');
  } else {
    const resident = fincoreBytes(big);
    t.ok(resident > 0, `what was warmed stays warm (${resident} bytes, fincore)`);
    t.ok(resident < 256 * MiB, 'the rest was not warmed (fincore)');
  }
  // "Within about a chunk", as behaviour rather than time: the one job
  // finishes the slice it is in (at most one 1 MiB chunk) and reads no more.
  const afterAbort = stats().warmedBytes - warmedAtAbort;
  t.ok(afterAbort <= 1 * MiB, `at most one chunk warmed after the abort (${afterAbort} bytes)`);
  t.comment(`ran ${(Number(abortedAt - started) / 1e6).toFixed(0)} ms, settled ${settledAfter.toFixed(1)} ms after abort`);
});

t.test('fairness: a small warm-up finishes while a large cold one is in progress', async (t) => {
  configure({ threads: 1, chunkSize: 2 * MiB });
  t.teardown(() => configure({ threads: 4, chunkSize: 8 * MiB }));
  // stats().threads counts live threads: retired ones exit when they wake.
  for (let i = 0; i < 500 && stats().threads > 1; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  const bigFd = await openCold(t, big);
  const smallFd = await openCold(t, coldFiles[0]!);
  t.teardown(() => {
    fs.closeSync(bigFd);
    fs.closeSync(smallFd);
  });
  let bigDone = false;
  const large = prepareForRead(bigFd).then((n) => ((bigDone = true), n));
  await new Promise((resolve) => setTimeout(resolve, 5));
  t.equal(stats().threads, 1, 'one thread serves both');
  const small = await prepareForRead(smallFd, 0, 4096);
  t.equal(small, 4096);
  t.equal(bigDone, false, 'the large one is still in progress when the small one resolves');
  t.equal(await large, 256 * MiB);
});

t.test('isolation: fs work on the libuv pool proceeds while 8 cold warm-ups run', async (t) => {
  t.equal(process.env.UV_THREADPOOL_SIZE ?? '4', '4', 'the default libuv pool of 4 threads');
  if (!caps.native) {
    // The fallback's reads run on the libuv pool (documented), at most
    // `threads` at once: with 2, two of libuv's 4 threads stay free.
    configure({ threads: 2 });
    t.teardown(() => configure({ threads: 4 }));
    t.comment('fallback: threads 2, so at most 2 of the 4 libuv threads read');
  }
  const idle: number[] = [];
  for (let i = 0; i < 50; i++) idle.push(await timeStat(big));

  const fds: number[] = [];
  for (const f of coldFiles) fds.push(await openCold(t, f));
  t.teardown(() => fds.forEach((fd) => fs.closeSync(fd)));
  let pending = fds.length;
  const warmups = fds.map((fd) => prepareForRead(fd).finally(() => pending--));
  const busy: number[] = [];
  let mostActive = 0;
  while (pending === fds.length && busy.length < 200) {
    busy.push(await timeStat(big));
    mostActive = Math.max(mostActive, stats().active);
  }
  await Promise.all(warmups);

  t.ok(busy.length >= 20, `${busy.length} stats completed while all 8 warm-ups were still in flight`);
  const p50Idle = percentile(idle, 50);
  const p50Busy = percentile(busy, 50);
  // Latency figures are reported, not asserted: the speed claim (stat p99
  // within 2x of idle during warm-ups) is bench/isolation.ts's.
  t.comment(`stat p50 idle ${p50Idle.toFixed(3)} ms, during warm-ups ${p50Busy.toFixed(3)} ms; p99 ${percentile(busy, 99).toFixed(3)} ms`);
  if (!caps.native) {
    // What keeps libuv threads free in the fallback: at most `threads` reads at once.
    t.ok(mostActive <= 2, `fallback: at most 2 reads in flight at once (saw ${mostActive})`);
  }
});

t.test('the event loop stays responsive while a cold 256 MiB file warms', async (t) => {
  const fd = await openCold(t, big);
  t.teardown(() => fs.closeSync(fd));
  // Only pagewarm's threads read the slow disk here: with the whole process
  // throttled, the main thread's own page faults (these VMs page idle code
  // out) would queue behind the warm-up's reads, which is the VM, not us.
  disk.restore();
  // The reads run on pagewarm-N threads natively; in the fallback on the
  // libuv pool (Node names those threads "node"): every thread but the main one.
  const readers = caps.native ? threadIds('pagewarm-') : threadIds('').filter((tid) => tid !== process.pid);
  const poolDisk = slowDisk(big, 50_000_000, readers);
  t.teardown(() => poolDisk.restore());
  t.comment(`disk mode: ${poolDisk.mode}`);
  // The same measure for a second with nothing running first: on a machine
  // busy with other work (tap -j3 on 2 cores), scheduling alone put the
  // fallback's p99 at 22-24 ms; a loop that waited on the disk would be
  // stalled for a chunk's read each time (160 ms at 50 MB/s, 8 MiB natively;
  // 20 ms, 1 MiB, on the fallback) and far above both bounds.
  const idle = monitorEventLoopDelay({ resolution: 1 });
  idle.enable();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  idle.disable();
  const idleP99 = idle.percentile(99) / 1e6;
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  // Behaviour, not time: the loop keeps turning while the warm-up runs (a
  // warm-up holding the JS thread for a chunk's read would let it turn once
  // per chunk at most). Turns are counted until the warm-up settles.
  let settled = false;
  let turns = 0;
  let readsWhileTurning = 0;
  const spin = (): void => {
    if (settled) return;
    turns++;
    setImmediate(spin);
  };
  setImmediate(spin);
  const warming = prepareForRead(fd).finally(() => (settled = true));
  const chunks = caps.native ? 256 / 8 : 256; // the warm-up's slices (8 MiB natively, 1 MiB reads in the fallback)
  for (let i = 0; !settled && i < 10_000; i++) {
    await new Promise((r) => setImmediate(r));
    if (stats().active > 0) readsWhileTurning++;
  }
  const n = await warming;
  h.disable();
  t.equal(n, 256 * MiB);
  t.ok(turns > chunks, `the event loop turned ${turns} times during the warm-up's ${chunks} chunks`);
  t.ok(readsWhileTurning > 0, 'while a read was in progress off the JS thread');
  const p99 = h.percentile(99) / 1e6;
  // Reported, not asserted: the loop-delay claim is bench/isolation.ts's.
  t.comment(`event-loop delay p99 ${p99.toFixed(2)} ms, max ${(h.max / 1e6).toFixed(2)} ms over ${h.count} samples; idle p99 ${idleP99.toFixed(2)} ms`);
});

async function timeStat(path: string): Promise<number> {
  const start = process.hrtime.bigint();
  await stat(path);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
