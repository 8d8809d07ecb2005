// Soak: 1,000,000 calls in one process, mostly fast-path ones so it fits in
// CI (8 s for the calls here, about 15 s with start-up), with every kind of call mixed in, and its memory
// and descriptors measured at 11 checkpoints (after a forced GC).
//
// Per 1,000 calls: 600 prepareForRead on a resident 4 KiB range (fast path,
// no thread hop), 150 prepareForReadSync and 100 residencySync on resident
// ranges, 50 advise, 40 prepareForRead on a closed descriptor (EBADF), 30
// with an already aborted signal, 20 with a bad argument (RangeError), 5
// residency queries and 4 cold warm-ups (pool jobs), 1 sendfile to /dev/null.
//
// Bounds asserted (written down in docs/guarantees.md):
// - open descriptors: exactly the same at the end as at the first checkpoint;
// - RSS: grows by less than 24 MiB from the checkpoint at 100,000 calls (V8
//   and the allocator warmed up) to the end: a leak of 28 bytes or more per
//   call would break it (measured here: 3-8 MiB, allocator noise);
// - V8 heap used: grows by less than 8 MiB over the same span;
// - nothing left in the pool.
// Under AddressSanitizer (PAGEWARM_ASAN=1) the soak is 200,000 calls and
// the RSS bound is not asserted (ASan's quarantine holds freed memory by design).
// On the portable fallback (PAGEWARM_FORCE_FALLBACK=1) it is 400,000 calls:
// every warm-up there is a libuv read (about 50 us a call here, 51 s for a
// million in CI, which ran past the 115 s limit on a loaded machine); the
// bounds are the same, so a leak of 70 bytes or more per call breaks them.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { scratchDir, makeFile } from './helpers';

const MiB = 1 << 20;
const dir = scratchDir();
const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');
const path = makeFile(join(dir, 'soak'), 8 * MiB);
const asan = process.env.PAGEWARM_ASAN === '1';
const fallback = process.env.PAGEWARM_FORCE_FALLBACK === '1';
const BATCHES = asan ? 200 : fallback ? 400 : 1000; // of 1,000 calls

const script = `
const pw = require(${JSON.stringify(dist)});
const fs = require('fs');
const count = () => fs.readdirSync('/proc/self/fd').length;
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
(async () => {
  const fd = fs.openSync(${JSON.stringify(path)}, 'r');
  const devnull = fs.openSync('/dev/null', 'w');
  const closed = 4321;
  const aborted = AbortSignal.abort();
  for (let i = 0; i < 5 && pw.stats().sendfileChunks === 0; i++) { pw.evict(fd); await pw.prepareForRead(fd, 0, 4096); }
  await pw.prepareForRead(fd, 0, 1 << 20); // the first MiB resident: the fast-path ranges
  const checkpoints = [];
  const t0 = Date.now();
  let calls = 0, bad = 0;
  const expect = (p, want) => p.then((v) => { if (want !== undefined && v !== want) bad++; }, (e) => { if (want !== 'reject') bad++; });
  for (let b = 0; b < ${BATCHES}; b++) {
    const ps = [];
    for (let i = 0; i < 600; i++) ps.push(expect(pw.prepareForRead(fd, (i % 256) * 4096, 4096), 4096));
    for (let i = 0; i < 150; i++) if (pw.prepareForReadSync(fd, (i % 256) * 4096, 4096) !== 4096) bad++;
    for (let i = 0; i < 100; i++) if (pw.residencySync(fd, (i % 256) * 4096, 4096).pages !== 1) bad++;
    for (let i = 0; i < 50; i++) pw.advise(fd, 0, 4096, 'normal');
    for (let i = 0; i < 40; i++) ps.push(expect(pw.prepareForRead(closed), 'reject'));
    for (let i = 0; i < 30; i++) ps.push(expect(pw.prepareForRead(fd, 0, 10, { signal: aborted }), 'reject'));
    for (let i = 0; i < 20; i++) { try { pw.prepareForReadSync(fd, -1); bad++; } catch {} }
    for (let i = 0; i < 5; i++) ps.push(expect(pw.residency(fd, 0, 65536)));
    const cold = (1 << 20) + ((b * 4) % 1792) * 4096; // beyond the hot MiB
    pw.evict(fd, cold, 4 * 4096);
    for (let i = 0; i < 4; i++) ps.push(expect(pw.prepareForRead(fd, cold + i * 4096, 4096), 4096));
    ps.push(expect(pw.transferTo(devnull, fd, 0, 4096), 4096));
    await Promise.all(ps);
    calls += 1000;
    if (b % (${BATCHES} / 10) === ${BATCHES} / 10 - 1 || b === 0) {
      global.gc(); global.gc();
      checkpoints.push({ calls, ms: Date.now() - t0, rssMiB: rss(), heapMiB: process.memoryUsage().heapUsed / 1048576, fds: count(), pending: pw.stats().queued + pw.stats().active + pw.stats().waiting });
    }
  }
  console.log(JSON.stringify({ calls, bad, ms: Date.now() - t0, checkpoints, fastPathHits: pw.stats().fastPathHits }));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
`;

t.test(`soak: ${BATCHES * 1000} calls, memory and descriptors bounded`, (t) => {
  const r = spawnSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8', timeout: 115_000 });
  t.equal(r.signal, null, 'no crash, no hang');
  t.equal(r.status, 0, r.stderr || 'exited cleanly');
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  t.equal(out.calls, BATCHES * 1000, `${out.calls} calls in ${(out.ms / 1000).toFixed(1)} s (${Math.round(out.calls / (out.ms / 1000))} calls/s)`);
  t.equal(out.bad, 0, 'every call gave its expected result');
  const cps = out.checkpoints as Array<{ calls: number; rssMiB: number; heapMiB: number; fds: number; pending: number }>;
  for (const c of cps) {
    t.comment(`${String(c.calls).padStart(7)} calls: RSS ${c.rssMiB.toFixed(1)} MiB, heap ${c.heapMiB.toFixed(1)} MiB, ${c.fds} fds, ${c.pending} pending`);
  }
  const first = cps[1]; // after a tenth of the calls
  const last = cps[cps.length - 1];
  t.equal(last.fds, cps[0].fds, `open descriptors unchanged (${cps[0].fds})`);
  t.equal(last.pending, 0, 'nothing left in the pool');
  const heapGrowth = last.heapMiB - first.heapMiB;
  t.ok(heapGrowth < 8, `V8 heap growth from ${first.calls} to ${last.calls} calls: ${heapGrowth.toFixed(1)} MiB < 8 MiB`);
  const rssGrowth = last.rssMiB - first.rssMiB;
  if (asan) t.comment(`RSS growth ${rssGrowth.toFixed(1)} MiB (not asserted under ASan: its quarantine keeps freed memory)`);
  else t.ok(rssGrowth < 24, `RSS growth from ${first.calls} to ${last.calls} calls: ${rssGrowth.toFixed(1)} MiB < 24 MiB`);
  t.end();
});
