// prepareForRead / prepareForReadSync / warmFile / residency: the range ends
// up resident, judged by pagewarm itself and by util-linux fincore.
//
// On the portable fallback (PAGEWARM_FORCE_FALLBACK=1, capabilities().native
// false) pagewarm cannot judge itself: residency is { source: 'unknown' } with
// null counts and evict is a checked no-op. There the tests start cold through
// makeCold and judge residency from the outside only (fincore for whole
// files, the mincore judge for ranges); the fallback's reads do make the
// pages resident.
import t from 'tap';
import * as fs from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import {
  prepareForRead,
  prepareForReadSync,
  warmFile,
  residency,
  residencySync,
  evict,
  advise,
  stats,
  capabilities,
} from '../lib/index';
import { binding } from '../lib/core/native';
import { scratchDir, makeFile, makeSparseFile, warmedWhole, dropCache, cacheJudge, makeCold } from './helpers';

const MiB = 1 << 20;
const GiB = 1 << 30;
const dir = scratchDir();
const big = makeFile(join(dir, 'big'), 256 * MiB);
const caps = capabilities();
// The outside judge of ranges, needed only where pagewarm cannot judge itself.
const judge = caps.native ? undefined : cacheJudge();
t.teardown(() => judge?.close());
/** The fallback's residency answer: honest about knowing nothing. */
const UNKNOWN = { source: 'unknown', residentPages: null, residentBytes: null } as const;

t.test('a cold 256 MiB file is fully resident right after prepareForRead', async (t) => {
  const fd = fs.openSync(big, 'r');
  t.teardown(() => fs.closeSync(fd));
  if (!(await makeCold(t, fd))) return;
  const before = await residency(fd);
  if (caps.native) t.equal(before.source, 'cachestat', 'root on Linux >= 6.5 reads cachestat');
  else t.match(before, UNKNOWN, 'fallback: residency unknown, counts null');
  t.equal(before.bytes, 256 * MiB);
  t.equal(before.pages, (256 * MiB) / caps.pageSize);
  if (caps.native) t.equal(before.residentPages, 0, 'cold, as makeCold found it');

  const { sendfileChunks, fallbackReads, warmedBytes } = stats();
  const warmed = await prepareForRead(fd);
  t.equal(warmed, 256 * MiB, 'resolves with the bytes now resident');
  const after = residencySync(fd);
  const warmedIn = warmedWhole(big);
  if (caps.native) {
    // Resident, or reclaimed since by the VM's background reclaim (see warmedWhole).
    t.equal(after.residentPages! + after.evictedPages!, after.pages, `residency: every page resident (${after.residentPages}), or reclaimed since (${after.evictedPages})`);
    t.equal(after.bytes, 256 * MiB);
  } else {
    t.match(after, { ...UNKNOWN, bytes: 256 * MiB }, 'fallback: residency still unknown, never claimed');
  }
  t.ok(warmedIn.whole, `every page read in: ${warmedIn.counts}`);
  if (caps.native) t.ok(stats().sendfileChunks > sendfileChunks, 'warmed by sendfile to /dev/null');
  else {
    t.ok(stats().fallbackReads >= fallbackReads + 256, 'fallback: warmed by reads of at most 1 MiB (the scratch buffer)');
    t.equal(stats().warmedBytes - warmedBytes, 256 * MiB, 'fallback: warmedBytes counts the range');
    t.equal(stats().sendfileChunks, 0, 'fallback: the native-only counter stays 0');
  }
});

t.test('prepareForReadSync and FileHandle and warmFile warm too', async (t) => {
  const path = makeFile(join(dir, 'sync'), 8 * MiB + 123);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  await makeCold(t, fd);
  t.equal(prepareForReadSync(fd), 8 * MiB + 123);
  t.ok(warmedWhole(path).whole, `resident: ${warmedWhole(path).counts}`);

  await makeCold(t, fd);
  const handle = await open(path, 'r');
  t.equal(await prepareForRead(handle, 4096, MiB), MiB, 'FileHandle accepted');
  if (caps.native) {
    const part = residencySync(fd, 4096, MiB);
    t.equal(part.residentPages! + (part.evictedPages ?? 0), part.pages, 'the requested part is resident (resident, or reclaimed since)');
  } else {
    t.ok(await judge!.resident(path, 4096, MiB), 'the requested part is resident (mincore judge)');
  }
  await handle.close();

  await makeCold(t, fd);
  t.equal(await warmFile(path), 8 * MiB + 123);
  t.ok(warmedWhole(path).whole, `resident: ${warmedWhole(path).counts}`);
  t.equal(await warmFile(path, { offset: MiB, length: 10 }), 10);
  await t.rejects(warmFile(join(dir, 'missing')), { code: 'ENOENT', syscall: 'open' });
});

t.test('ranges: short count at end of file, zero length, past the end', async (t) => {
  const path = makeFile(join(dir, 'small'), 10000);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  await makeCold(t, fd);
  t.equal(await prepareForRead(fd, 9000, 5000), 1000, 'short at end of file');
  t.equal(prepareForReadSync(fd, 9000, 5000), 1000, 'sync: short at end of file');
  t.equal(await prepareForRead(fd, 0, 0), 0, 'zero length');
  t.equal(prepareForReadSync(fd, 0, 0), 0);
  t.equal(await prepareForRead(fd, 10000), 0, 'offset at the end');
  t.equal(await prepareForRead(fd, 50000, 10), 0, 'offset past the end');
  t.equal(prepareForReadSync(fd, 50000), 0);
  t.equal(await prepareForRead(fd, 0, Number.MAX_SAFE_INTEGER), 10000, 'huge length: the whole file');
  const r = await residency(fd, 50000, 10);
  if (caps.native) t.match(r, { pages: 0, residentPages: 0, bytes: 0, residentBytes: 0 }, 'residency past the end is empty');
  else {
    t.match(r, { ...UNKNOWN, pages: 0, bytes: 0 }, 'fallback: residency past the end is empty, its counts unknown');
    t.ok(warmedWhole(path).whole, `fallback: the whole small file is resident, 3 pages: ${warmedWhole(path).counts}`);
  }
});

t.test('a sparse file: ranges above 4 GiB and a range longer than 2 GiB', async (t) => {
  const marker = Buffer.from('pagewarm sparse marker');
  const size = 6 * GiB + 12345;
  const path = makeSparseFile(join(dir, 'sparse'), size, [
    [4 * GiB + 7, marker],
    [size - marker.length, marker],
  ]);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  await makeCold(t, fd);

  t.equal(await prepareForRead(fd, 4 * GiB, 16 * MiB), 16 * MiB, 'a range above 4 GiB');
  if (caps.native) {
    const high = residencySync(fd, 4 * GiB, 16 * MiB);
    t.equal(high.residentPages! + (high.evictedPages ?? 0), high.pages, 'resident above 4 GiB (resident, or reclaimed since)');
  } else {
    t.ok(await judge!.resident(path, 4 * GiB, 16 * MiB), 'resident above 4 GiB (mincore judge)');
  }

  const long = 2 * GiB + 3 * MiB + 5;
  t.equal(await prepareForRead(fd, 3 * GiB, long), long, 'a range longer than 2 GiB (more than one sendfile call cap)');
  // Warming 2 GiB takes seconds, and these VMs reclaim idle page cache in the
  // background (DAMON), so the first pages warmed may already be gone again.
  if (caps.native) {
    // Pages reclaim took since count as read: cachestat says how many it
    // evicted from the range (the file is new: none before the warm-up).
    const r = residencySync(fd, 3 * GiB, long);
    const reclaimed = r.evictedPages ?? 0;
    t.ok(r.residentPages! + reclaimed >= r.pages * 0.98, `resident: ${r.residentPages} of ${r.pages} pages, ${reclaimed} reclaimed since`);
    t.equal(r.bytes, long);
  } else {
    t.match(residencySync(fd, 3 * GiB, long), { ...UNKNOWN, bytes: long }, 'fallback: residency unknown');
    // mincore cannot count what reclaim took meanwhile: a wider margin.
    const [r] = await judge!.ranges(path, [[3 * GiB, long]]);
    t.ok(r!.resident >= r!.pages * 0.95, `resident (mincore judge): ${r!.resident} of ${r!.pages} pages`);
  }

  t.equal(prepareForReadSync(fd, size - 100, 1000), 100, 'short count at the end of a 6 GiB file');
  dropCache(fd); // release the memory
});

t.test('already resident small ranges take the fast path', { skip: caps.native && !caps.fastPath && 'the native fast path needs cachestat (Linux >= 6.5)' }, async (t) => {
  const path = makeFile(join(dir, 'hot'), 4 * MiB);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  await prepareForRead(fd);
  if (!caps.fastPath) {
    // The fallback has no fast path (capabilities().fastPath false): every
    // warm-up reads its range again; the native-only counters stay 0.
    t.ok(warmedWhole(path).whole, `resident: ${warmedWhole(path).counts}`);
    const reads = stats().fallbackReads;
    t.equal(await prepareForRead(fd, 0, 4096), 4096);
    t.equal(await prepareForRead(fd, 100, MiB), MiB);
    t.equal(await prepareForRead(fd), 4 * MiB);
    t.equal(stats().fallbackReads, reads + 1 + 1 + 4, 'fallback: each resident range was read again, 1 MiB at a time');
    t.match(stats(), { fastPathHits: 0, sendfileChunks: 0 }, 'fallback: no fast path, no sendfile');
    return;
  }
  const before = stats().fastPathHits;
  t.equal(await prepareForRead(fd, 0, 4096), 4096);
  t.equal(await prepareForRead(fd, 100, 512 * 1024), 512 * 1024);
  t.equal(stats().fastPathHits, before + 2, 'both settled on the JS thread');
  const chunks = stats().sendfileChunks;
  t.equal(await prepareForRead(fd), 4 * MiB, 'larger than the fast-path bound: warmed on a pagewarm thread');
  t.equal(stats().fastPathHits, before + 2);
  t.ok(stats().sendfileChunks > chunks, 'by sendfile to /dev/null, resident or not (a page another reader has in flight is waited for)');
});

t.test('advise and evict', async (t) => {
  const path = makeFile(join(dir, 'advice'), 4 * MiB);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  await prepareForRead(fd);
  evict(fd, 0, 2 * MiB);
  if (caps.native) {
    const head = residencySync(fd, 0, 2 * MiB);
    const tail = residencySync(fd, 2 * MiB);
    t.equal(head.residentPages, 0, 'the evicted half is gone');
    t.equal(tail.residentPages! + (tail.evictedPages ?? 0), tail.pages, 'the other half stays (resident, or reclaimed since)');
  } else {
    t.ok(warmedWhole(path).whole, `fallback: evict is a no-op, every page stays: ${warmedWhole(path).counts}`);
  }
  for (const a of ['normal', 'sequential', 'random', 'noreuse', 'dontneed'] as const) {
    t.doesNotThrow(() => advise(fd, 0, 0, a), a);
  }
  if (caps.native) t.equal(residencySync(fd).residentPages, 0, 'dontneed over the whole file (length 0) evicts it');
  else t.ok(warmedWhole(path).whole, `fallback: advice is a no-op too, every page stays: ${warmedWhole(path).counts}`);
  // willneed starts asynchronous readahead: accepted, but it guarantees nothing.
  t.doesNotThrow(() => advise(fd, 0, 4096, 'willneed'), 'willneed');
  t.throws(() => advise(fd, 0, 0, 'sometimes' as never), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
});

t.test('read fallback: where splice is unsupported the range is still warmed', async (t) => {
  const path = makeFile(join(dir, 'fallback'), 12 * MiB + 1);
  const fd = fs.openSync(path, 'r');
  if (!caps.native) {
    // The portable fallback has no splice and no test hook: it always warms
    // by reading, which is the path this test forces natively.
    t.teardown(() => fs.closeSync(fd));
    t.notOk(binding._testOnlySetFlags, 'fallback: no native test hook');
    await makeCold(t, fd);
    const reads = stats().fallbackReads;
    t.equal(await prepareForRead(fd), 12 * MiB + 1);
    t.equal(stats().fallbackReads, reads + 13, 'counted as fallback reads (1 MiB each)');
    t.ok(warmedWhole(path).whole, `resident: ${warmedWhole(path).counts}`);
    await makeCold(t, fd);
    t.equal(prepareForReadSync(fd), 12 * MiB + 1, 'sync too');
    t.ok(warmedWhole(path).whole, `resident: ${warmedWhole(path).counts}`);
    return;
  }
  // The native test hook forces the path taken on filesystems whose splice
  // fails with EINVAL (some FUSE, ZFS, GPFS and overlay set-ups).
  t.ok(binding._testOnlySetFlags, 'native test hook present');
  t.teardown(() => {
    binding._testOnlySetFlags!({ forceReadFallback: false });
    fs.closeSync(fd);
  });
  binding._testOnlySetFlags!({ forceReadFallback: true });
  await makeCold(t, fd); // resident chunks would be skipped, not read
  const reads = stats().fallbackReads;
  t.equal(await prepareForRead(fd), 12 * MiB + 1);
  t.ok(stats().fallbackReads > reads, 'counted as fallback reads');
  // Resident, or reclaimed since (this VM reclaims idle page cache in the background).
  t.ok(warmedWhole(path).whole, `resident: ${warmedWhole(path).counts}`);
  await makeCold(t, fd);
  t.equal(prepareForReadSync(fd), 12 * MiB + 1, 'sync too');
  t.ok(warmedWhole(path).whole, `sync: resident: ${warmedWhole(path).counts}`);
});
