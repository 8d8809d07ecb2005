// Pages whose read is still in flight (issue 13, item 21).
//
// cachestat (like mincore) counts a page as cached from the moment its read
// is submitted. The two JS-thread fast paths, the inline send of a small
// resident range and prepareForRead's settle-at-once for a resident one,
// must not take such pages for resident: the send would wait for the disk
// on the page lock on the JS thread, the warm-up would settle before the
// pages landed.
//
// A pagewarm thread reads a cold file through a slow disk (a cgroup v1 blkio
// throttle on pagewarm's threads only, see helpers' slowDisk), so its
// readahead stays in flight for a long while. Pages in flight are found
// from the outside: cachestat counts them, a non-blocking read
// (readCached: preadv2 RWF_NOWAIT) cannot get them. On such a range the
// test calls sendfile and prepareForRead on the JS thread and checks, by
// pagewarm's own counters, that neither went the inline way. How long each
// call held the JS thread is printed as a figure, not asserted.
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as http from 'node:http';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { serveFile, closeServeFileCache, type ServeFileResult } from '../lib/index';
import { join } from 'node:path';
import { prepareForRead, transferTo, residencySync, configure, stats, capabilities } from '../lib/index';
import { binding } from '../lib/core/native';
import { scratchDir, makeFile, slowDisk, threadIds, startPagewarm, makeCold } from './helpers';

const KiB = 1024;
const MiB = 1024 * KiB;
const PAGE = 4096;
const caps = capabilities();
const dir = scratchDir();


const scratchBuf = Buffer.alloc(PAGE);
/** cachestat counts the page, a non-blocking read cannot have it: its read is in flight. */
function inFlight(fd: number, offset: number): boolean {
  if (residencySync(fd, offset, PAGE).residentPages !== 1) return false;
  const r = binding.readCached(fd, scratchBuf, 0, PAGE, offset);
  return typeof r !== 'number' && r.errno === 11; // EAGAIN
}

/** The highest page of [0, span) whose read is in flight (the last one submitted), or -1. */
function lastInFlight(fd: number, span: number): number {
  for (let offset = span - PAGE; offset >= 0; offset -= PAGE) if (inFlight(fd, offset)) return offset;
  return -1;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('fast paths do not take pages in flight for resident', { skip: !caps.fastPath && 'no JS-thread fast paths here (they need cachestat)' }, async (t) => {
  const path = makeFile(join(dir, 'slow'), 16 * MiB);
  t.ok(await startPagewarm(dir), 'pagewarm threads started');
  const disk = slowDisk(path, 1_000_000, threadIds('pagewarm-'));
  t.teardown(() => disk.restore());
  t.comment(`disk mode: ${disk.mode}`);
  if (!disk.throttled) {
    // Skip reason: without a writable cgroup v1 blkio throttle, reads land too fast to catch pages in flight.
    t.skip(`pages in flight need a throttled disk to stay in flight: ${disk.mode}`, () => {});
    return;
  }
  configure({ chunkSize: 256 * KiB });
  t.teardown(() => configure({ chunkSize: 8 * MiB }));

  const server = net.createServer((s) => s.resume());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  const outFd = (client as unknown as { _handle: { fd: number } })._handle.fd;
  t.teardown(() => {
    client.destroy();
    server.close();
  });

  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  if (!(await makeCold(t, fd))) return;

  const controller = new AbortController();
  const warming = prepareForRead(fd, 0, undefined, { signal: controller.signal }).catch((e: Error) => e);
  const pending: Array<Promise<unknown>> = [];
  let attempts = 0;
  let maxHoldUs = 0;
  try {
    for (let round = 0; round < 400 && attempts < 6; round++) {
      const offset = lastInFlight(fd, 16 * MiB);
      if (offset < 0) {
        await sleep(10);
        continue;
      }
      // The pre-check has just seen the page in flight; its read is the last
      // one submitted and lands no sooner than the throttle lets it.
      const before = stats();
      let started = process.hrtime.bigint();
      const warm = prepareForRead(fd, offset, PAGE);
      let held = Number(process.hrtime.bigint() - started) / 1e3;
      maxHoldUs = Math.max(maxHoldUs, held);
      pending.push(warm.catch((e) => e));
      started = process.hrtime.bigint();
      const send = transferTo(outFd, fd, offset, PAGE);
      held = Number(process.hrtime.bigint() - started) / 1e3;
      maxHoldUs = Math.max(maxHoldUs, held);
      pending.push(send.catch((e) => e));
      const after = stats();
      attempts++;
      t.equal(after.fastPathHits, before.fastPathHits, `prepareForRead of page ${offset / PAGE} (in flight) did not settle on the JS thread`);
      t.equal(after.inlineSends, before.inlineSends, `sendfile of page ${offset / PAGE} (in flight) was not sent from the JS thread`);
      await sleep(5);
    }
    t.ok(attempts > 0, `found pages in flight to try (${attempts} attempts)`);
    t.comment(`longest a fast-path call held the JS thread: ${maxHoldUs.toFixed(0)} us`);
  } finally {
    controller.abort();
  }
  // Everything settles once the throttled reads land.
  const results = await Promise.all(pending);
  for (const r of results) t.equal(r, PAGE, 'each small call settled with its page once it landed');
  const end = await warming;
  t.ok(end instanceof Error && end.name === 'AbortError', 'the background warm-up was aborted');

  // A landed page (read here, so it is) goes the fast way again.
  fs.readSync(fd, scratchBuf, 0, PAGE, 0);
  const s0 = stats();
  t.equal(await prepareForRead(fd, 0, PAGE), PAGE);
  t.equal(stats().fastPathHits, s0.fastPathHits + 1, 'a landed page settles on the JS thread');
});

// serveFile's fast path reads a small resident body on the JS thread only
// with preadv2(RWF_NOWAIT). Where the file system cannot read without
// waiting (EOPNOTSUPP: tmpfs here), "cachestat says cached, then read" could
// wait for a read in flight, so such a body goes to pagewarm's threads.
t.test('serveFile never reads on the JS thread where RWF_NOWAIT is not supported (tmpfs)', async (t) => {
  // Skip reason: the fallback has no zero-copy path to compare with, and the case needs a tmpfs.
  if (!caps.zeroCopySend || !fs.existsSync('/dev/shm')) { t.skip('needs the native binding and a tmpfs at /dev/shm', () => {}); return; }
  const shm = fs.mkdtempSync('/dev/shm/pagewarm-nowait-');
  t.teardown(() => fs.rmSync(shm, { recursive: true, force: true }));
  const body = Buffer.alloc(16 * KiB, 7);
  fs.writeFileSync(join(shm, 'small.bin'), body);
  const probe = fs.openSync(join(shm, 'small.bin'), 'r');
  const got = binding.readCached(probe, Buffer.alloc(16), 0, 16, 0);
  fs.closeSync(probe);
  // Skip reason: where this tmpfs supports RWF_NOWAIT, the path under test is never taken.
  if (typeof got === 'number') { t.skip('this tmpfs reads with RWF_NOWAIT: nothing to check', () => {}); return; }
  const results: ServeFileResult[] = [];
  const server = http.createServer((req, res) => {
    serveFile(req, res, req.url ?? '/', { root: shm, cache: true }).then((r) => results.push(r), (e) => res.destroy(e));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { server.close(); closeServeFileCache(); });
  const { port } = server.address() as net.AddressInfo;
  for (let i = 0; i < 3; i++) {
    const received = await new Promise<Buffer>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/small.bin', agent: false }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c)).on('end', () => resolve(Buffer.concat(parts))).on('error', reject);
      }).on('error', reject);
    });
    t.ok(received.equals(body), `request ${i + 1}: the exact bytes`);
  }
  for (let i = 0; i < 300 && results.length < 3; i++) await sleep(10);
  t.equal(results.length, 3, 'three responses settled');
  t.ok(results.every((r) => r.statusCode === 200 && r.zeroCopy), 'every body went zero-copy from pagewarm\'s threads, none was read on the JS thread');
});

// A warm-up's promise is that the pages are in the page cache when it
// settles. A page another reader has in flight is counted by cachestat but is
// not there yet: the pool thread must wait for it, not skip it as resident.
// The other reader is a child process throttled to 1 MB/s that asks for the
// whole file with WILLNEED (its readahead stays in flight for about 2 s).
t.test('a warm-up on pagewarm\'s threads settles only after pages another reader has in flight land', { skip: !caps.fastPath && 'needs cachestat and RWF_NOWAIT to see pages in flight' }, async (t) => {
  const size = 2 * MiB; // past the JS-thread fast path: the pool warms it
  const path = makeFile(join(dir, 'other-reader'), size);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  if (!(await makeCold(t, fd))) return;
  const reader = spawn('python3', ['-c', [
    'import os, sys',
    'fd = os.open(sys.argv[1], os.O_RDONLY)',
    'print("ready", flush=True)',
    'sys.stdin.readline()',
    'os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)',
    'print("asked", flush=True)',
    'sys.stdin.readline()',
  ].join('\n'), path], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => reader.kill());
  const lines: string[] = [];
  reader.stdout.setEncoding('utf8').on('data', (d: string) => lines.push(...d.split('\n').filter(Boolean)));
  const said = async (word: string): Promise<boolean> => {
    for (let i = 0; i < 500 && !lines.includes(word); i++) await sleep(10);
    return lines.includes(word);
  };
  if (!(await said('ready'))) return t.fail('precondition: the reader process did not start');
  const disk = slowDisk(path, 1_000_000, [reader.pid as number]);
  t.teardown(() => disk.restore());
  t.comment(`disk mode: ${disk.mode}`);
  // Skip reason: without a writable cgroup v1 blkio throttle, the reader's pages land before they can be seen in flight.
  if (!disk.throttled) { t.skip(`pages in flight need a throttled disk to stay in flight: ${disk.mode}`, () => {}); return; }
  reader.stdin.write('\n');
  if (!(await said('asked'))) return t.fail('precondition: the reader did not ask for the file');
  const last = size - PAGE;
  if (!inFlight(fd, last)) return t.fail('precondition: the reader\'s last page was not in flight (cachestat counts it, RWF_NOWAIT cannot read it)');
  const r = residencySync(fd, 0, size);
  t.comment(`before the warm-up: cachestat counts ${r.residentPages} of ${r.pages} pages`);
  const allBefore = r.residentPages === r.pages;

  t.equal(await prepareForRead(fd, 0, size), size, 'the warm-up covers the file');
  // Every page must read without waiting. One that does not, and that the
  // page cache no longer holds while cachestat counts it evicted, was
  // reclaimed after the warm-up (this VM's background reclaim; see
  // warmedWhole): that is not a page left in flight. (Seen once in CI: a
  // read stopped at page 131 of 512.)
  const all = Buffer.alloc(size);
  const unreadable: number[] = [];
  for (let pos = 0; pos < size;) {
    const n = binding.readCached(fd, all, pos, size - pos, pos);
    pos += typeof n === 'number' ? n : 0;
    if (pos >= size) break;
    unreadable.push(Math.floor(pos / PAGE));
    pos = (Math.floor(pos / PAGE) + 1) * PAGE;
  }
  const described = unreadable.map((p) => {
    const r = residencySync(fd, p * PAGE, PAGE);
    // Every page was in the page cache before the warm-up (counted above): one gone now was reclaimed since.
    return { p, reclaimed: allBefore && r.residentPages === 0 && (r.evictedPages ?? 0) > 0, how: `${r.residentPages} resident, ${r.evictedPages ?? 0} evicted` };
  });
  const reclaimed = described.filter((d) => d.reclaimed).length;
  if (reclaimed > 0) t.comment(`${reclaimed} page(s) reclaimed since the warm-up settled`);
  t.same(described.filter((d) => !d.reclaimed).map((d) => `page ${d.p}: ${d.how}`), [],
    'when it settles, every page reads without waiting (none still in flight)');
  reader.stdin.end('\n');
  await once(reader, 'exit');
});
