// Descriptor lifetimes, O_DIRECT, other users' files, aborts and fd leaks.
//
// On the portable fallback (capabilities().native false) residency is
// { source: 'unknown' } and evict a no-op: files start cold through makeCold and
// residency is judged by fincore (whole files) and the mincore judge (ranges).
import t from 'tap';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { prepareForRead, prepareForReadSync, residency, residencySync, evict, stats, capabilities, AbortError } from '../lib/index';
import { scratchDir, makeFile, fincoreBytes, openFdCount, cacheJudge, startPagewarm, warmedWhole, makeCold } from './helpers';

const MiB = 1 << 20;
const dir = scratchDir();
fs.chmodSync(dir, 0o755);
const caps = capabilities();

t.test('closing the fd while its warm-up is in flight cannot redirect it', async (t) => {
  const a = makeFile(join(dir, 'a'), 64 * MiB);
  const b = makeFile(join(dir, 'b'), 64 * MiB);
  // Start the pool and its /dev/null first: opened later, either could take
  // the number closed below and fail "reused at once" (seen in CI).
  t.ok(await startPagewarm(dir), 'a starter was read from disk (pool and /dev/null open)');
  const fdA = fs.openSync(a, 'r');
  await makeCold(t, fdA);
  const probeB = fs.openSync(b, 'r');
  await makeCold(t, probeB);
  fs.closeSync(probeB);

  const warming = prepareForRead(fdA);
  fs.closeSync(fdA);
  const fdB = fs.openSync(b, 'r'); // the kernel hands out the lowest free number
  t.equal(fdB, fdA, 'the number was reused at once');
  t.equal(await warming, 64 * MiB, 'the warm-up finished on the file it was given');
  const warmedA = warmedWhole(a);
  t.ok(warmedA.whole, `every page of file A was read in (${warmedA.counts})`);
  t.ok(fincoreBytes(b) < 8 * MiB, `file B was not warmed (${fincoreBytes(b)} bytes resident)`);
  fs.closeSync(fdB);
});

t.test('an O_DIRECT fd: the range still ends up in the page cache', async (t) => {
  const path = makeFile(join(dir, 'direct'), 32 * MiB);
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  t.teardown(() => fs.closeSync(fd));
  t.ok(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').match(/flags:\s+\d*4\d{4}\b/), 'opened with O_DIRECT');
  if (!(await makeCold(t, fd))) return;
  const reopens = stats().directReopens;
  t.equal(await prepareForRead(fd), 32 * MiB);
  t.ok(warmedWhole(path).whole, `resident: ${warmedWhole(path).counts}`);
  t.equal(stats().directReopens, reopens + 1, 'warmed through a buffered reopen');
  await makeCold(t, fd);
  t.equal(prepareForReadSync(fd, 0, 4 * MiB), 4 * MiB);
  if (caps.native) {
    const r = residencySync(fd, 0, 4 * MiB);
    t.equal(r.residentPages! + (r.evictedPages ?? 0), r.pages, 'sync warm-up of an O_DIRECT fd too (resident, or reclaimed since)');
  } else {
    const judge = cacheJudge();
    t.teardown(() => judge.close());
    t.ok(await judge.resident(path, 0, 4 * MiB), 'sync warm-up of an O_DIRECT fd too (mincore judge)');
  }
});

t.test("another user's file opened read-only: residency unknown, warm-up still works", async (t) => {
  const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');
  t.ok(fs.existsSync(dist), 'the compiled package exists (npm run build:ts)');
  const path = makeFile(join(dir, 'root-owned'), 16 * MiB);
  fs.chmodSync(path, 0o644); // root's, readable by all, writable by root only
  const cold = fs.openSync(path, 'r');
  await makeCold(t, cold);
  fs.closeSync(cold);
  const script = `
    const fs = require('fs');
    const pw = require(${JSON.stringify(dist)});
    (async () => {
      const fd = fs.openSync(${JSON.stringify(path)}, 'r');
      const before = await pw.residency(fd);
      const warmed = await pw.prepareForRead(fd);
      const after = pw.residencySync(fd);
      console.log(JSON.stringify({ uid: process.getuid(), before, warmed, after }));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const out = execFileSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
  const r = JSON.parse(out);
  t.equal(r.uid, 65534, 'ran as nobody');
  t.match(r.before, { source: 'unknown', residentPages: null, residentBytes: null, bytes: 16 * MiB }, 'never claims residency');
  t.equal(r.warmed, 16 * MiB, 'prepareForRead warms anyway');
  t.equal(r.after.source, 'unknown');
  t.ok(warmedWhole(path).whole, `resident, as root sees it: ${warmedWhole(path).counts}`);
});

t.test('abort before start', async (t) => {
  const path = makeFile(join(dir, 'abort'), 4 * MiB);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  const cold = await makeCold(t, fd);
  const reason = new Error('changed my mind');
  const warmed = stats().warmedBytes;
  await t.rejects(prepareForRead(fd, 0, undefined, { signal: AbortSignal.abort(reason) }), {
    name: 'AbortError',
    code: 'ABORT_ERR',
    cause: reason,
  });
  t.equal(stats().warmedBytes, warmed, 'nothing was warmed');
  if (cold && caps.native) t.equal(residencySync(fd).residentPages, 0, 'nothing resident');
  else if (cold) t.equal(fincoreBytes(path), 0, 'nothing resident (fincore)');
  const err = await prepareForRead(fd, 0, 1, { signal: AbortSignal.abort() }).catch((e) => e);
  t.ok(err instanceof AbortError);
});

t.test('the open fd count is unchanged after 10,000 calls', async (t) => {
  const path = makeFile(join(dir, 'leak'), 256 * 1024);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  const closed = fs.openSync(path, 'r');
  fs.closeSync(closed);
  await prepareForRead(fd); // open /dev/null and start the pool before counting
  const before = openFdCount();
  for (let i = 0; i < 10000; i += 10) {
    const round: Array<Promise<unknown>> = [];
    evict(fd, (i % 64) * 4096, 4096);
    round.push(prepareForRead(fd, (i % 64) * 4096, 4096)); // cold: a pool job
    round.push(prepareForRead(fd, 0, 8192)); // hot: the fast path
    round.push(residency(fd, 0, 65536));
    round.push(prepareForRead(fd, 0, 10, { signal: AbortSignal.abort() }).catch(() => 0));
    round.push(prepareForRead(closed).catch(() => 0)); // EBADF
    round.push(residency(closed).catch(() => 0));
    prepareForReadSync(fd, 0, 4096);
    residencySync(fd, 0, 4096);
    try {
      prepareForReadSync(closed);
    } catch {
      /* EBADF */
    }
    round.push(prepareForRead(fd, 1 << 30)); // past the end
    await Promise.all(round);
  }
  t.equal(openFdCount(), before, 'no descriptor leaked');
  t.equal(stats().queued + stats().active, 0, 'nothing left in the pool');
});
