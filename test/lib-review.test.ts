// Issue #13, the library's own edges:
// - zero means zero: every public call taking a length reads 0 as zero bytes
//   (evict() and `pagewarm evict -l 0` used to drop the file to its end, as
//   posix_fadvise reads 0); only advise() keeps posix_fadvise's meaning.
// - one 'close' listener per held socket, however many sendFile calls queue
//   on it (11 used to print MaxListenersExceededWarning).
// - warmFile opens through the binding, tied to the calling environment: a
//   worker terminated while it warms leaks no descriptor (fs.promises.open's
//   did).
// - options.signal is checked by shape, as Node's validateAbortSignal does:
//   signals from another realm and AbortSignal-shaped objects are accepted.
//
// In the portable fallback evict() is a no-op and residency is 'unknown':
// the zero-length eviction is judged by the outside judge there, where it
// passes trivially; every other case runs the same in both modes.
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as vm from 'node:vm';
import { execFileSync } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  prepareForRead,
  prepareForReadSync,
  warmFile,
  residency,
  residencySync,
  evict,
  advise,
  transferTo,
  transferToSync,
  sendFile,
  AbortError,
} from '../lib/index';
import { main } from '../lib/cli/main';
import { scratchDir, makeFile, fdList, warmedWhole, makeCold, cacheJudge } from './helpers';
import { compiledLib } from './send-helpers';

const KiB = 1 << 10;
const MiB = 1 << 20;
const dir = scratchDir('pagewarm-review-');

/** Warms the whole file and reports whether every page was read in (resident now, or reclaimed since). */
async function warmWhole(path: string): Promise<{ whole: boolean; counts: string }> {
  const fd = fs.openSync(path, 'r');
  try {
    await prepareForRead(fd);
  } finally {
    fs.closeSync(fd);
  }
  return warmedWhole(path);
}

t.test('zero means zero: evict(fd, offset, 0) drops nothing', async (t) => {
  const path = makeFile(join(dir, 'evict-zero'), 4 * MiB);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  const before = await warmWhole(path);
  if (!before.whole) return t.fail(`precondition: the file did not stay resident after a warm-up (${before.counts})`);
  t.equal(evict(fd, 0, 0), undefined, 'evict(fd, 0, 0)');
  t.equal(evict(fd, 2 * MiB, 0), undefined, 'evict(fd, 2 MiB, 0)');
  evict(fd, 4 * MiB, 0); // at the end
  const after = warmedWhole(path);
  t.ok(after.whole, `every page is still in the cache (or reclaimed by the kernel, never evicted): ${after.counts}`);
});

t.test('zero means zero: a zero-length evict still checks its descriptor', async (t) => {
  const path = makeFile(join(dir, 'evict-check'), 4096);
  const fd = fs.openSync(path, 'r');
  fs.closeSync(fd);
  t.throws(() => evict(fd, 0, 0), { code: 'EBADF', errno: -9, syscall: 'posix_fadvise' }, 'closed: EBADF');
  const [r, w] = pipeFds();
  t.teardown(() => (fs.closeSync(r), fs.closeSync(w)));
  t.throws(() => evict(r, 0, 0), { code: 'ESPIPE', errno: -29, syscall: 'posix_fadvise' }, 'pipe: ESPIPE, as posix_fadvise');
  t.throws(() => evict(r, 0, -1), { code: 'ERR_OUT_OF_RANGE' }, 'a negative length is still refused');
  // advise() keeps posix_fadvise's own 0 = to the end (documented there).
  const wfd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(wfd));
  t.equal(advise(wfd, 0, 0, 'normal'), undefined, 'advise(fd, 0, 0) is accepted');
});

/** A pipe's two descriptors, [read, write]. */
function pipeFds(): [number, number] {
  // Node has no pipe(2): a FIFO opened both ways does the same.
  const fifo = join(dir, `fifo-${process.hrtime.bigint()}`);
  execFileSync('mkfifo', [fifo]);
  const r = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const w = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  return [r, w];
}

t.test('zero means zero: `pagewarm evict -l 0` drops nothing', async (t) => {
  const path = makeFile(join(dir, 'cli-zero'), 4 * MiB);
  const before = await warmWhole(path);
  if (!before.whole) return t.fail(`precondition: the file did not stay resident after a warm-up (${before.counts})`);
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), { isTTY: false });
  let out = '';
  stdout.on('data', (d) => (out += d));
  stderr.resume();
  const code = await main(['evict', '--json', '-l', '0', path], { stdout, stderr });
  t.equal(code, 0, 'exit status 0');
  const report = JSON.parse(out) as { files: Array<{ bytes: number }> };
  t.equal(report.files[0]!.bytes, 0, 'the range is empty');
  const after = warmedWhole(path);
  t.ok(after.whole, `every page is still in the cache: ${after.counts}`);
});

t.test('zero means zero: every other call taking a length', async (t) => {
  const path = makeFile(join(dir, 'zero-all'), 256 * KiB);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  t.equal(await prepareForRead(fd, 0, 0), 0, 'prepareForRead');
  t.equal(await prepareForRead(fd, 4096, 0), 0, 'prepareForRead at an offset');
  t.equal(prepareForReadSync(fd, 4096, 0), 0, 'prepareForReadSync');
  t.equal(await warmFile(path, { offset: 4096, length: 0 }), 0, 'warmFile');
  t.match(await residency(fd, 4096, 0), { bytes: 0, pages: 0 }, 'residency');
  t.match(residencySync(fd, 4096, 0), { bytes: 0, pages: 0 }, 'residencySync');
  if (await makeCold(t, fd)) {
    await prepareForRead(fd, 0, 0);
    prepareForReadSync(fd, 0, 0);
    await warmFile(path, { length: 0 });
    const judge = cacheJudge();
    t.teardown(() => judge.close());
    const [r] = await judge.ranges(path, [[0, 256 * KiB]]);
    t.equal(r!.resident, 0, 'zero-length warm-ups read nothing into the cache');
  }

  // The sends: nothing of the file reaches the receiver.
  const server = net.createServer();
  server.on('connection', (s: net.Socket) => s.on('error', () => {})); // a reset peer is expected here, not an uncaught error
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const got: Buffer[] = [];
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {}); // the peer may reset it on its way out: not an uncaught error
  await new Promise((r) => client.once('connect', r));
  const peer = await accepted;
  peer.on('data', (d: Buffer) => got.push(d));
  const ended = new Promise((r) => peer.once('end', r));
  const out = (client as unknown as { _handle: { fd: number } })._handle.fd;
  t.equal(await transferTo(out, fd, 0, 0), 0, 'transferTo');
  t.equal(await transferTo(out, fd, 4096, 0), 0, 'sendfile at an offset');
  t.equal(transferToSync(out, fd, 4096, 0), 0, 'transferToSync');
  t.match(await sendFile(client, fd, { offset: 4096, length: 0 }), { bytes: 0 }, 'sendFile (descriptor)');
  t.match(await sendFile(client, path, { length: 0 }), { bytes: 0 }, 'sendFile (path)');
  client.end('end');
  await ended;
  t.equal(Buffer.concat(got).toString(), 'end', 'the receiver got no file byte');
});

t.test('one close listener per socket, however many sendFile calls queue on it', async (t) => {
  const path = makeFile(join(dir, 'listeners'), 64 * KiB);
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(w);
  };
  process.on('warning', onWarning);
  t.teardown(() => process.removeListener('warning', onWarning));
  const server = net.createServer();
  server.on('connection', (s: net.Socket) => s.on('error', () => {})); // a reset peer is expected here, not an uncaught error
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {}); // reset when the peer is destroyed with bytes unread, below
  t.teardown(() => client.destroy());
  await new Promise((r) => client.once('connect', r));
  const peer = await accepted;
  let received = 0;
  peer.on('data', (d: Buffer) => (received += d.length));
  const baseline = client.listenerCount('close');
  const sends = Array.from({ length: 20 }, () => sendFile(client, path));
  t.ok(client.listenerCount('close') <= baseline + 1, `20 queued sends: ${client.listenerCount('close') - baseline} listener(s) added`);
  const results = await Promise.all(sends);
  t.same(results.map((r) => r.bytes), Array(20).fill(64 * KiB), 'every send completed');
  t.equal(client.listenerCount('close'), baseline, 'no listener left once they settled');
  await new Promise((r) => setImmediate(r));
  t.same(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map(String), [], 'no MaxListenersExceededWarning');

  // The one listener still settles every queued send when the socket closes.
  const stalled = await new Promise<net.Socket>((resolve) => {
    const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => resolve(c));
  });
  stalled.on('error', () => {});
  const big = makeFile(join(dir, 'listeners-big'), 32 * MiB);
  const queued = Array.from({ length: 12 }, () => sendFile(stalled, big).then(() => 'resolved', (e: { code?: string; name?: string }) => e.code ?? e.name));
  t.ok(stalled.listenerCount('close') <= baseline + 1, '12 more queued: one listener');
  stalled.destroy();
  const outcomes = await Promise.all(queued);
  t.same(outcomes, Array(12).fill('ERR_STREAM_DESTROYED'), 'a destroyed socket rejects every queued send');
  t.equal(stalled.listenerCount('close'), 0, 'and its listener is gone');
  t.same(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map(String), [], 'still no warning');
  peer.destroy();
  t.ok(received > 0, 'the receiver got bytes');
});

t.test('one abort listener per signal, however many calls share it', async (t) => {
  const path = makeFile(join(dir, 'shared-signal'), 4 * MiB);
  const warnings: Error[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(w);
  };
  process.on('warning', onWarning);
  t.teardown(() => process.removeListener('warning', onWarning));
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  const server = net.createServer((s) => s.resume());
  server.on('connection', (s: net.Socket) => s.on('error', () => {})); // a reset peer is expected here, not an uncaught error
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {}); // the peer may reset it on its way out: not an uncaught error
  await new Promise((r) => client.once('connect', r));
  t.teardown(() => client.destroy());
  const outFd = (client as unknown as { _handle: { fd: number } })._handle.fd;

  const controller = new AbortController();
  const { signal } = controller;
  const calls: Array<Promise<unknown>> = [];
  for (let i = 0; i < 12; i++) {
    calls.push(prepareForRead(fd, 0, undefined, { signal }));
    calls.push(warmFile(path, { signal }));
    calls.push(residency(fd, 0, undefined));
    calls.push(sendFile(client, path, { signal, length: 256 * KiB }));
  }
  calls.push(transferTo(outFd, fd, 0, 64 * KiB, { signal }));
  const settled = await Promise.allSettled(calls);
  t.same(settled.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason)), [], 'all 49 calls completed');
  await new Promise((r) => setImmediate(r));
  t.same(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map(String), [], 'no MaxListenersExceededWarning for 37 calls on one signal');

  // And an abort still reaches every call waiting on it.
  // (another file: pages the sends above handed to the socket stay pinned a while)
  const coldPath = makeFile(join(dir, 'shared-signal-cold'), 4 * MiB);
  const coldFd = fs.openSync(coldPath, 'r');
  t.teardown(() => fs.closeSync(coldFd));
  await makeCold(t, coldFd);
  const aborted = Array.from({ length: 12 }, () => prepareForRead(coldFd, 0, undefined, { signal }).then(() => 'resolved', (e: Error) => e.name));
  controller.abort();
  const names = await Promise.all(aborted);
  t.ok(names.every((n) => n === 'AbortError' || n === 'resolved'), `each call aborted or had finished: ${[...new Set(names)].join(', ')}`);
  t.same(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map(String), [], 'still no warning');
});

t.test('warmFile in a worker terminated many times leaks no descriptor of its file', async (t) => {
  const path = makeFile(join(dir, 'warmfile-worker'), 256 * KiB);
  const lib = compiledLib();
  // Start pagewarm here first (the pool's /dev/null), so it is in both lists.
  await warmFile(path);
  const before = fdList();
  const rounds = 40;
  for (let round = 0; round < rounds; round++) {
    const w = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const pw = require(workerData.lib);
       let n = 0;
       (async () => {
         for (;;) {
           await Promise.all([pw.warmFile(workerData.path), pw.warmFile(workerData.path, { length: 4096 })]);
           if (++n === 3) parentPort.postMessage('busy');
         }
       })().catch((e) => parentPort.postMessage(String(e && e.stack || e)));`,
      { eval: true, workerData: { lib, path } },
    );
    const m = await new Promise<unknown>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    if (m !== 'busy') {
      t.fail(`round ${round}: ${String(m)}`);
      await w.terminate();
      break;
    }
    // Terminated at a different point of the loop each round.
    if (round % 4) await new Promise((r) => setTimeout(r, round % 7));
    await w.terminate();
  }
  await new Promise((r) => setTimeout(r, 100));
  const leaked = fdList().filter((l) => !before.includes(l) && l.endsWith(path));
  t.same(leaked, [], `no descriptor of the file stays open after ${rounds} terminated workers`);
});

/** An AbortSignal-shaped object made in another realm (a vm context): not an instance of this realm's AbortSignal. */
function foreignSignal(): { signal: AbortSignal; abort(reason: unknown): void; added(): number; live(): number } {
  const made = vm.runInNewContext(`
    (() => {
      const listeners = new Set();
      let added = 0;
      const signal = {
        aborted: false,
        reason: undefined,
        addEventListener(type, fn) { if (type === 'abort') { listeners.add(fn); added++; } },
        removeEventListener(type, fn) { if (type === 'abort') listeners.delete(fn); },
      };
      return {
        signal,
        abort(reason) {
          if (signal.aborted) return;
          signal.aborted = true;
          signal.reason = reason;
          for (const fn of [...listeners]) { listeners.delete(fn); fn({ type: 'abort' }); }
        },
        added: () => added,
        live: () => listeners.size,
      };
    })()`);
  return made;
}

t.test('options.signal: an AbortSignal from another realm, or AbortSignal-shaped, is accepted', async (t) => {
  const path = makeFile(join(dir, 'signals'), 256 * KiB);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  const f = foreignSignal();
  t.notOk(f.signal instanceof AbortSignal, 'the foreign signal is not an instance of AbortSignal here');
  t.equal(await prepareForRead(fd, 0, undefined, { signal: f.signal }), 256 * KiB, 'prepareForRead');
  t.equal(await warmFile(path, { signal: f.signal }), 256 * KiB, 'warmFile');
  t.equal(f.live(), 0, 'no listener is left on it');

  // An EventTarget with `aborted` and `reason`, as a polyfill makes one.
  const et = Object.assign(new EventTarget(), { aborted: true, reason: new Error('why') });
  await t.rejects(prepareForRead(fd, 0, 4096, { signal: et as unknown as AbortSignal }), { name: 'AbortError', cause: et.reason }, 'already aborted: AbortError');
  await t.rejects(warmFile(path, { signal: et as unknown as AbortSignal }), { name: 'AbortError' }, 'warmFile: AbortError');

  // Aborting a foreign signal stops a send parked on a receiver that never reads.
  const server = net.createServer((s) => s.pause());
  server.on('connection', (s: net.Socket) => s.on('error', () => {})); // a reset peer is expected here, not an uncaught error
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const big = makeFile(join(dir, 'signals-big'), 64 * MiB);
  const bigFd = fs.openSync(big, 'r');
  t.teardown(() => fs.closeSync(bigFd));
  const client = await new Promise<net.Socket>((resolve) => {
    const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => resolve(c));
  });
  client.on('error', () => {});
  t.teardown(() => client.destroy());
  const g = foreignSignal();
  const out = (client as unknown as { _handle: { fd: number } })._handle.fd;
  const parked = transferTo(out, bigFd, 0, 64 * MiB, { signal: g.signal });
  for (let i = 0; i < 500 && g.added() === 0; i++) await new Promise((r) => setTimeout(r, 2));
  t.equal(g.added(), 1, 'sendfile listens on the foreign signal');
  g.abort(new Error('stop'));
  const err = await parked.then(
    () => undefined,
    (e: AbortError & { bytesSent: number }) => e,
  );
  t.match(err, { name: 'AbortError', code: 'ABORT_ERR' }, 'sendfile rejects with an AbortError');
  t.ok(err!.bytesSent < 64 * MiB, `bytesSent ${err!.bytesSent} < the range`);
  t.equal(g.live(), 0, 'no listener is left on it');

  const h = foreignSignal();
  const c2 = await new Promise<net.Socket>((resolve) => {
    const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1', () => resolve(c));
  });
  c2.on('error', () => {});
  t.teardown(() => c2.destroy());
  const parked2 = sendFile(c2, big, { signal: h.signal });
  for (let i = 0; i < 500 && h.added() === 0; i++) await new Promise((r) => setTimeout(r, 2));
  h.abort(new Error('stop'));
  await t.rejects(parked2, { name: 'AbortError' }, 'sendFile rejects with an AbortError');
});

t.test('options.signal: what is not AbortSignal-shaped is refused as Node refuses it', async (t) => {
  const fd = fs.openSync(makeFile(join(dir, 'signals-bad'), 4096), 'r');
  t.teardown(() => fs.closeSync(fd));
  const bad: unknown[] = [null, 1, 'signal', {}, { aborted: false }, { aborted: false, addEventListener() {} }, () => {}];
  for (const signal of bad) {
    await t.rejects(prepareForRead(fd, 0, 4096, { signal } as never), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }, `prepareForRead: ${String(signal)}`);
    await t.rejects(sendFile(new net.Socket(), fd, { signal } as never), { code: 'ERR_INVALID_ARG_TYPE' }, `sendFile: ${String(signal)}`);
  }
});
