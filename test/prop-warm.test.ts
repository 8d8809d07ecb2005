// Property: for any file size, offset, length, chunk size and thread count,
// prepareForRead (async, sync, FileHandle, warmFile) resolves with exactly the
// bytes that exist in the range, min(length, size - offset) or 0 past the end,
// and afterwards every page of that range is resident.
//
// Runs: 300 random cases of 1-6 concurrent ranges each (about 8 s here).
// Reproduce a failure with PAGEWARM_PROP_SEED=<seed printed on failure>.
//
// On the portable fallback (capabilities().native false) pagewarm's residency
// is 'unknown' and evict a no-op: each case starts cold through
// makeCold and each range is judged by the mincore judge (cacheJudge) the
// moment it settles, as residencySync judges it natively. The fallback reads
// each case's ranges chunkSize bytes (at most 1 MiB) per libuv round trip:
// about 14-16 s for the 300 cases here, against 8 s natively.
import t from 'tap';
import fc from 'fast-check';
import * as fs from 'node:fs';
import { open } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  prepareForRead,
  prepareForReadSync,
  warmFile,
  residencySync,
  configure,
  stats,
  capabilities,
} from '../lib/index';
import { scratchDir, openFdCount, fdList, fdsAdded, settledFdList, fdChanges, cacheJudge, warmedWhole, startPagewarm, makeCold } from './helpers';

const KiB = 1024;
const MiB = 1 << 20;
const PAGE = capabilities().pageSize;
const dir = scratchDir();
const data = randomBytes(12 * MiB);
const seed = process.env.PAGEWARM_PROP_SEED ? Number(process.env.PAGEWARM_PROP_SEED) : undefined;
const native = capabilities().native;
// Started before any descriptor is counted, ended with the file.
const judge = native ? undefined : cacheJudge();
t.teardown(() => judge?.close());

/** Sizes that sit on and around page and chunk boundaries, and random ones. */
const sizeArb = fc.oneof(
  fc.constantFrom(0, 1, PAGE - 1, PAGE, PAGE + 1, 2 * MiB, 2 * MiB + 1, 8 * MiB - 1, 8 * MiB + PAGE),
  fc.integer({ min: 0, max: 12 * MiB }),
);

type Range = { offset?: number; length?: number; how: 'async' | 'sync' | 'handle' | 'warmFile' };

/** An offset and a length relative to a file of `size` bytes, including past-the-end and huge ones. */
function rangeArb(size: number): fc.Arbitrary<Range> {
  const offset = fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: fc.integer({ min: 0, max: size + 2 * PAGE }) },
    { weight: 1, arbitrary: fc.constantFrom(size, size + 1, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER) },
  );
  const length = fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constant(0) },
    { weight: 4, arbitrary: fc.integer({ min: 1, max: Math.max(1, size) }) },
    { weight: 1, arbitrary: fc.constantFrom(1, PAGE, 2 ** 31 + 7, Number.MAX_SAFE_INTEGER) },
  );
  const how = fc.constantFrom('async' as const, 'sync' as const, 'handle' as const, 'warmFile' as const);
  return fc.record({ offset, length, how }, { requiredKeys: ['how'] });
}

const caseArb = sizeArb.chain((size) =>
  fc.record({
    size: fc.constant(size),
    ranges: fc.array(rangeArb(size), { minLength: 1, maxLength: 6 }),
    threads: fc.integer({ min: 1, max: 8 }),
    // 4 KiB .. 16 MiB, in pages, biased to small chunks (many slices per range).
    chunkSize: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 4096 })).map((pages) => pages * PAGE),
    // Partly warm before: fast path, resident skips and partial chunks get their turn.
    preWarm: fc.option(fc.record({ offset: fc.nat({ max: size }), length: fc.nat({ max: size }) }), { nil: undefined }),
  }),
);

/** For a failure message: which pages of the range are neither cached nor evicted now. */
function missingPages(fd: number, offset: number, length: number): string {
  const first = Math.floor(offset / PAGE);
  const last = Math.floor((offset + length - 1) / PAGE);
  const missing: number[] = [];
  for (let p = first; p <= last; p++) {
    const one = residencySync(fd, p * PAGE, PAGE);
    if (one.residentPages === 0 && (one.evictedPages ?? 0) === 0) missing.push(p);
  }
  return `pages ${first}..${last}; missing now: ${missing.length ? missing.join(',') : 'none'}`;
}

function expected(size: number, r: Range): number {
  const offset = r.offset ?? 0;
  if (offset >= size) return 0;
  return Math.min(r.length ?? Infinity, size - offset);
}

let counter = 0;

t.test('prepareForRead returns exactly the bytes in the range, which is then resident', async (t) => {
  t.teardown(() => configure({ threads: 4, chunkSize: 8 * MiB }));
  t.ok(await startPagewarm(dir), 'pool and /dev/null open before descriptors are counted');
  const fdListBefore = await settledFdList();
  const fdsBefore = openFdCount();
  let cases = 0;
  let reclaimedSeen = 0;
  let secondLooks = 0;
  let ranges = 0;
  let bytes = 0;
  await fc.assert(
    fc.asyncProperty(caseArb, async ({ size, ranges: rs, threads, chunkSize, preWarm }) => {
      configure({ threads, chunkSize });
      const path = join(dir, `f${counter++}`);
      fs.writeFileSync(path, data.subarray(0, size));
      const fd = fs.openSync(path, 'r');
      fs.fsyncSync(fd);
      try {
        await makeCold(t, fd, 0, undefined, judge);
        if (preWarm) prepareForReadSync(fd, preWarm.offset, preWarm.length);
        // Residency is checked the moment each range settles: this VM reclaims
        // page cache in the background (about 150 pages/s, measured), so a
        // check made later could see a page the warm-up did make resident gone.
        const check = async (r: Range, got: number): Promise<void> => {
          const want = expected(size, r);
          if (got !== want) throw new Error(`range ${JSON.stringify(r)} of ${size} bytes: got ${got}, want ${want}`);
          if (want > 0) {
            let res = residencySync(fd, r.offset ?? 0, want);
            // A page missing now may have been read and then reclaimed (this
            // VM reclaims in the background): cachestat counts those as
            // evicted (reclaim leaves a shadow entry; makeCold's DONTNEED does
            // not). A page neither resident nor evicted was never read.
            //
            // One exception, measured: with other test processes beside this
            // one, about one run of this file in 20 has one range with 2-6 of
            // its hundreds of pages neither resident nor evicted at the first
            // look (251/253, 1347/1350 and 441/447 pages on 2026-11-26, and
            // once in CI the day before), and whole at a second cachestat
            // made at once, microseconds later (3 of 3 such ranges in 60
            // runs). That looks like the kernel's count wavering, not a page left
            // unread: pagewarm never removes a page, and reading one from the
            // disk takes far longer than the second look. A range whose pages
            // are still missing then fails, and a page a warm-up really
            // skipped is still missing at the second look in every case that
            // has no other warm-up over it.
            const whole = (x: typeof res): boolean => x.residentPages! + (x.evictedPages ?? 0) >= x.pages;
            if (native && res.bytes === want && !whole(res)) {
              const again = residencySync(fd, r.offset ?? 0, want);
              if (whole(again)) {
                secondLooks++;
                res = again;
              }
            }
            const reclaimed = res.evictedPages ?? 0;
            if (native && (res.bytes !== want || !whole(res))) {
              throw new Error(`range ${JSON.stringify(r)} of ${size} bytes: ${res.residentPages}/${res.pages} pages resident, ${reclaimed} reclaimed; ${missingPages(fd, r.offset ?? 0, want)}`);
            }
            if (native && reclaimed > 0) reclaimedSeen += reclaimed;
            if (!native) {
              if (res.bytes !== want || res.source !== 'unknown' || res.residentPages !== null) {
                throw new Error(`range ${JSON.stringify(r)} of ${size} bytes: fallback residency ${JSON.stringify(res)}`);
              }
              const [seen] = await judge!.ranges(path, [[r.offset ?? 0, want]]);
              if (seen!.resident !== seen!.pages) {
                throw new Error(`range ${JSON.stringify(r)} of ${size} bytes: ${seen!.resident}/${seen!.pages} pages resident (mincore judge)`);
              }
            }
          }
          ranges++;
          bytes += want;
        };
        await Promise.all(
          rs.map(async (r) => {
            switch (r.how) {
              case 'async':
                return check(r, await prepareForRead(fd, r.offset, r.length));
              case 'sync':
                return check(r, prepareForReadSync(fd, r.offset, r.length));
              case 'handle': {
                const h = await open(path, 'r');
                try {
                  return await check(r, await prepareForRead(h, r.offset, r.length));
                } finally {
                  await h.close();
                }
              }
              case 'warmFile':
                return check(r, await warmFile(path, { offset: r.offset, length: r.length }));
            }
          }),
        );
        cases++;
      } finally {
        fs.closeSync(fd);
        fs.rmSync(path);
      }
    }),
    { numRuns: process.env.PAGEWARM_ASAN === '1' ? 100 : 300, seed, verbose: 1 },
  );
  t.comment(`${cases} cases, ${ranges} ranges, ${(bytes / MiB).toFixed(1)} MiB warmed and checked; ${reclaimedSeen} pages read and since reclaimed by the kernel; ${secondLooks} ranges short at the first look and whole at the second`);
  t.equal(stats().queued + stats().active, 0, 'nothing left in the pool');
  t.same(fdsAdded(fdListBefore, fdList()), [], `no descriptor leaked (${fdsBefore} before, ${openFdCount()} after; ${fdChanges(fdListBefore, fdList())})`);
});

t.test('chunk size and thread count do not change the answer for one cold file', async (t) => {
  // A deterministic cross-check of the property: the same ranges, every configuration.
  t.teardown(() => configure({ threads: 4, chunkSize: 8 * MiB }));
  const size = 10 * MiB + 123;
  const path = join(dir, 'fixed');
  fs.writeFileSync(path, data.subarray(0, size));
  const fd = fs.openSync(path, 'r');
  fs.fsyncSync(fd);
  t.teardown(() => fs.closeSync(fd));
  for (const threads of [1, 2, 7]) {
    for (const chunkSize of [4 * KiB, 64 * KiB + PAGE, 3 * MiB, 16 * MiB]) {
      configure({ threads, chunkSize });
      await makeCold(t, fd, 0, undefined, judge);
      const got = await Promise.all([prepareForRead(fd), prepareForRead(fd, 5, 7 * MiB), prepareForRead(fd, size - 1, 10)]);
      t.same(got, [size, 7 * MiB, 1], `threads ${threads}, chunk ${chunkSize}`);
      const w = warmedWhole(path);
      t.ok(w.whole, `threads ${threads}, chunk ${chunkSize}: resident: ${w.counts}`);
    }
  }
});
