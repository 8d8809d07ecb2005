// prepareForRead / prepareForReadSync / warmFile / residency: the range ends
// up resident, judged by pagewarm itself and by util-linux fincore.
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
import { binding } from '../lib/native';
import { scratchDir, makeFile, makeSparseFile, fincoreBytes } from './helpers';

const MiB = 1 << 20;
const GiB = 1 << 30;
const dir = scratchDir();
const big = makeFile(join(dir, 'big'), 256 * MiB);
const caps = capabilities();

t.test('a cold 256 MiB file is fully resident right after prepareForRead', async (t) => {
  const fd = fs.openSync(big, 'r');
  t.teardown(() => fs.closeSync(fd));
  evict(fd);
  const before = await residency(fd);
  t.equal(before.source, 'cachestat', 'root on Linux >= 6.5 reads cachestat');
  t.equal(before.bytes, 256 * MiB);
  t.equal(before.pages, (256 * MiB) / caps.pageSize);
  t.ok(before.residentPages! < before.pages / 20, `evicted first: ${before.residentPages} of ${before.pages} pages resident`);
  t.ok(fincoreBytes(big) < 16 * MiB, 'fincore agrees it is (nearly) cold');

  const sendfileChunks = stats().sendfileChunks;
  const warmed = await prepareForRead(fd);
  t.equal(warmed, 256 * MiB, 'resolves with the bytes now resident');
  const after = residencySync(fd);
  const fincore = fincoreBytes(big);
  t.equal(after.residentPages, after.pages, 'residency: every page resident');
  t.equal(after.residentBytes, 256 * MiB);
  t.equal(fincore, 256 * MiB, 'fincore: every byte resident');
  t.ok(stats().sendfileChunks > sendfileChunks, 'warmed by sendfile to /dev/null');
});

t.test('prepareForReadSync and FileHandle and warmFile warm too', async (t) => {
  const path = makeFile(join(dir, 'sync'), 8 * MiB + 123);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  evict(fd);
  t.equal(prepareForReadSync(fd), 8 * MiB + 123);
  t.equal(residencySync(fd).residentPages, residencySync(fd).pages);

  evict(fd);
  const handle = await open(path, 'r');
  t.equal(await prepareForRead(handle, 4096, MiB), MiB, 'FileHandle accepted');
  const part = residencySync(fd, 4096, MiB);
  t.equal(part.residentPages, part.pages, 'the requested part is resident');
  await handle.close();

  evict(fd);
  t.equal(await warmFile(path), 8 * MiB + 123);
  t.equal(fincoreBytes(path), 8 * MiB + 4096, 'fincore counts whole pages');
  t.equal(await warmFile(path, { offset: MiB, length: 10 }), 10);
  await t.rejects(warmFile(join(dir, 'missing')), { code: 'ENOENT', syscall: 'open' });
});

t.test('ranges: short count at end of file, zero length, past the end', async (t) => {
  const path = makeFile(join(dir, 'small'), 10000);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  evict(fd);
  t.equal(await prepareForRead(fd, 9000, 5000), 1000, 'short at end of file');
  t.equal(prepareForReadSync(fd, 9000, 5000), 1000, 'sync: short at end of file');
  t.equal(await prepareForRead(fd, 0, 0), 0, 'zero length');
  t.equal(prepareForReadSync(fd, 0, 0), 0);
  t.equal(await prepareForRead(fd, 10000), 0, 'offset at the end');
  t.equal(await prepareForRead(fd, 50000, 10), 0, 'offset past the end');
  t.equal(prepareForReadSync(fd, 50000), 0);
  t.equal(await prepareForRead(fd, 0, Number.MAX_SAFE_INTEGER), 10000, 'huge length: the whole file');
  const r = await residency(fd, 50000, 10);
  t.match(r, { pages: 0, residentPages: 0, bytes: 0, residentBytes: 0 }, 'residency past the end is empty');
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
  evict(fd);

  t.equal(await prepareForRead(fd, 4 * GiB, 16 * MiB), 16 * MiB, 'a range above 4 GiB');
  const high = residencySync(fd, 4 * GiB, 16 * MiB);
  t.equal(high.residentPages, high.pages, 'resident above 4 GiB');

  const long = 2 * GiB + 3 * MiB + 5;
  t.equal(await prepareForRead(fd, 3 * GiB, long), long, 'a range longer than 2 GiB (more than one sendfile call cap)');
  const r = residencySync(fd, 3 * GiB, long);
  // Warming 2 GiB takes seconds, and these VMs reclaim idle page cache in the
  // background (DAMON), so the first pages warmed may already be gone again.
  t.ok(r.residentPages! >= r.pages * 0.98, `resident: ${r.residentPages} of ${r.pages} pages`);
  t.equal(r.bytes, long);

  t.equal(prepareForReadSync(fd, size - 100, 1000), 100, 'short count at the end of a 6 GiB file');
  evict(fd);
});

t.test('already resident small ranges take the fast path', { skip: !caps.fastPath && 'no cachestat here' }, async (t) => {
  const path = makeFile(join(dir, 'hot'), 4 * MiB);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  await prepareForRead(fd);
  const before = stats().fastPathHits;
  t.equal(await prepareForRead(fd, 0, 4096), 4096);
  t.equal(await prepareForRead(fd, 100, MiB), MiB);
  t.equal(stats().fastPathHits, before + 2, 'both settled on the JS thread');
  const skips = stats().residentSkips;
  t.equal(await prepareForRead(fd), 4 * MiB, 'larger than the fast-path bound: checked on a pagewarm thread');
  t.equal(stats().fastPathHits, before + 2);
  t.ok(stats().residentSkips > skips, 'and skipped there as resident');
});

t.test('advise and evict', async (t) => {
  const path = makeFile(join(dir, 'advice'), 4 * MiB);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  await prepareForRead(fd);
  evict(fd, 0, 2 * MiB);
  const head = residencySync(fd, 0, 2 * MiB);
  const tail = residencySync(fd, 2 * MiB);
  t.equal(head.residentPages, 0, 'the evicted half is gone');
  t.equal(tail.residentPages, tail.pages, 'the other half stays');
  for (const a of ['normal', 'sequential', 'random', 'noreuse', 'dontneed'] as const) {
    t.doesNotThrow(() => advise(fd, 0, 0, a), a);
  }
  t.equal(residencySync(fd).residentPages, 0, 'dontneed over the whole file (length 0) evicts it');
  // willneed starts asynchronous readahead: accepted, but it guarantees nothing.
  t.doesNotThrow(() => advise(fd, 0, 4096, 'willneed'), 'willneed');
  t.throws(() => advise(fd, 0, 0, 'sometimes' as never), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
});

t.test('read fallback: where splice is unsupported the range is still warmed', async (t) => {
  // The native test hook forces the path taken on filesystems whose splice
  // fails with EINVAL (some FUSE, ZFS, GPFS and overlay set-ups).
  t.ok(binding.setTestFlags, 'native test hook present');
  const path = makeFile(join(dir, 'fallback'), 12 * MiB + 1);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => {
    binding.setTestFlags!({ forceReadFallback: false });
    fs.closeSync(fd);
  });
  binding.setTestFlags!({ forceReadFallback: true });
  evict(fd);
  const reads = stats().fallbackReads;
  t.equal(await prepareForRead(fd), 12 * MiB + 1);
  t.ok(stats().fallbackReads > reads, 'counted as fallback reads');
  t.equal(residencySync(fd).residentPages, residencySync(fd).pages, 'resident');
  evict(fd);
  t.equal(prepareForReadSync(fd), 12 * MiB + 1, 'sync too');
  t.equal(residencySync(fd).residentPages, residencySync(fd).pages);
});
