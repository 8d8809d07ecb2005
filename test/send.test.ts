// sendfile / transferToSync: the fd-level API. Bytes are judged by sha256 on
// the receiving side; errors by their exact code; resources by counting
// /proc/self/fd and pagewarm's own counters.
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { execFileSync, spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { transferTo, transferToSync, stats, evict, capabilities } from '../lib/index';
import { scratch, randomFile, sha256OfRange, sha256Elsewhere, sha256, hashingPeer, hashServer, fdCount, rng, sleep, compiledLib, sendWhileNumberReused, KiB, MiB, GiB } from './send-helpers';
import { makeSparseFile, fdList, makeCold } from './helpers';

t.setTimeout(120_000);
const dir = scratch();
const SIZE = 24 * MiB + 777;
const file = randomFile(join(dir, 'data'), SIZE);
const fdOf = (s: net.Socket): number => (s as unknown as { _handle: { fd: number } })._handle.fd;

for (const kind of ['tcp', 'unix'] as const) {
  t.test(`random offsets and lengths over ${kind === 'tcp' ? 'TCP loopback' : 'a Unix domain socket'} are byte-exact`, async (t) => {
    const server = await hashServer(kind, dir);
    t.teardown(() => server.close());
    const fd = fs.openSync(file, 'r');
    t.teardown(() => fs.closeSync(fd));
    const random = rng(kind === 'tcp' ? 0x5eed : 0xfeed);
    const cases: Array<[number, number]> = [
      [0, SIZE], // the whole file
      [0, 0], // nothing
      [SIZE - 10, 1000], // past the end: short
      [SIZE, 10], // at the end: 0
      [SIZE + 4096, 10], // past the end: 0
      [1, 2 * MiB - 1], // unaligned
    ];
    for (let i = 0; i < 10; i++) {
      cases.push([Math.floor(random() * SIZE), Math.floor(random() * 20 * MiB)]);
    }
    for (const [offset, length] of cases) {
      const want = sha256OfRange(file, offset, length);
      const c = await server.connect();
      const sent = await transferTo(fdOf(c), fd, offset, length);
      c.end();
      const got = await server.next();
      t.equal(sent, want.bytes, `[${offset}, +${length}): resolves with the bytes sent`);
      t.equal(got.bytes, want.bytes, `[${offset}, +${length}): the receiver got as many`);
      t.equal(got.sha256, want.hex, `[${offset}, +${length}): sha256 matches`);
    }
  });
}

t.test('an O_DIRECT source: async and sync, aligned or not, cold or resident, byte-exact', async (t) => {
  const server = await hashServer('tcp', dir);
  t.teardown(() => server.close());
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  t.teardown(() => fs.closeSync(fd));
  const cases: Array<[number, number, boolean]> = [
    [0, 64 * KiB, true], // small and cold: the pool
    [0, 64 * KiB, false], // small and resident: may go from the JS thread
    [4095, 100 * KiB + 1, true],
    [3 * MiB + 7, 9 * MiB, true], // several chunks
  ];
  for (const sync of [false, true]) {
    // transferToSync blocks this thread, and the receiver runs on it: only
    // ranges the socket's buffers take at once (not the 9 MiB one).
    for (const [offset, length, cold] of sync ? cases.filter(([, n]) => n <= MiB) : cases) {
      // Best effort, not a precondition: the bytes are judged either way, and
      // pages this file's earlier sends left in socket buffers cannot be evicted.
      if (cold) evict(fd);
      const want = sha256OfRange(file, offset, length);
      const c = await server.connect();
      const sent = sync ? transferToSync(fdOf(c), fd, offset, length) : await transferTo(fdOf(c), fd, offset, length);
      c.end();
      const got = await server.next();
      const what = `${sync ? 'transferToSync' : 'transferTo'} [${offset}, +${length}) ${cold ? 'cold' : 'resident'}`;
      t.equal(sent, want.bytes, `${what}: resolves with the bytes sent`);
      t.equal(got.sha256, want.hex, `${what}: sha256 matches`);
    }
  }
});

t.test('a range longer than 2 GiB from a sparse file, and offsets above 4 GiB', async (t) => {
  t.setTimeout(110_000);
  const size = 4 * GiB + 600 * MiB;
  // Data around every boundary a 32-bit offset or count would break at.
  const at = [2 ** 31 - 100 * KiB, 3 * GiB, 2 ** 32 - 1000, 4 * GiB + 512 * KiB, size - 300 * KiB];
  const path = makeSparseFile(join(dir, 'sparse'), size, at.map((o): [number, Buffer] => [o, randomBytes(256 * KiB)]));
  const fd = fs.openSync(path, 'r');
  t.teardown(() => {
    evict(fd);
    fs.closeSync(fd);
  });
  const cases: Array<{ kind: 'tcp' | 'unix'; offset: number; length: number; what: string }> = [
    { kind: 'unix', offset: 2 * GiB - MiB - 3, length: 2 * GiB + 64 * MiB + 5, what: 'across 2^31 and 2^32, longer than 2 GiB' },
    { kind: 'tcp', offset: 4 * GiB + 300 * MiB + 123, length: GiB, what: 'from above 4 GiB past the end (short)' },
  ];
  for (const { kind, offset, length, what } of cases) {
    const peer = await hashingPeer(kind, dir);
    const c = await peer.connect();
    const sent = await transferTo(fdOf(c), fd, offset, length);
    c.end();
    const got = await peer.result;
    const want = await sha256Elsewhere(path, offset, length);
    t.equal(sent, want.bytes, `${what}: ${sent} bytes`);
    t.equal(got.bytes, want.bytes, `${what}: all received`);
    t.equal(got.hex, want.hex, `${what}: sha256 matches`);
    evict(fd);
  }
  t.ok(cases[0].length > 2 ** 31 && cases[1].offset > 2 ** 32, 'the ranges are what they claim');
});

t.test('to a regular file, and transferToSync to a pipe read by another process', async (t) => {
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  const out = join(dir, 'copy');
  const outFd = fs.openSync(out, 'w');
  t.equal(await transferTo(outFd, fd, 5, 3 * MiB), 3 * MiB);
  fs.closeSync(outFd);
  t.equal(sha256OfRange(out, 0, 3 * MiB).hex, sha256OfRange(file, 5, 3 * MiB).hex, 'file to file');
  // Past the filesystem's maximum file size sendfile(2) says EOVERFLOW: a range
  // past the end is 0 bytes, as it is anywhere else past the end.
  const outFd2 = fs.openSync(join(dir, 'copy2'), 'w');
  t.equal(await transferTo(outFd2, fd, 2 ** 53 - 1, 1), 0, 'offset 2^53-1: 0');
  t.equal(transferToSync(outFd2, fd, 2 ** 53 - 2, 2 ** 40), 0, 'sync, offset 2^53-2: 0');
  fs.closeSync(outFd2);

  // A child hashes its stdin; Node's end of the pipe is non-blocking, so
  // transferToSync waits out EAGAIN with poll() on this thread.
  const child = spawn(process.execPath, ['-e', `
    const h = require('crypto').createHash('sha256'); let n = 0;
    process.stdin.on('data', (d) => { h.update(d); n += d.length; });
    process.stdin.on('end', () => process.stdout.write(n + ' ' + h.digest('hex')));`], { stdio: ['pipe', 'pipe', 'inherit'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  const pipeFd = (child.stdin as unknown as { _handle: { fd: number } })._handle.fd;
  const sent = transferToSync(pipeFd, fd, 1000, 10 * MiB);
  child.stdin.end();
  await new Promise((r) => child.on('close', r));
  const want = sha256OfRange(file, 1000, 10 * MiB);
  t.equal(sent, 10 * MiB, 'transferToSync returns the bytes sent');
  t.equal(output, `${want.bytes} ${want.hex}`, 'the other process got exactly those bytes');
});

t.test('transferToSync in a worker thread to a TCP socket', async (t) => {
  const server = await hashServer('tcp', dir);
  t.teardown(() => server.close());
  const port = (server.server.address() as net.AddressInfo).port;
  const w = new Worker(
    `
    const { parentPort, workerData } = require('worker_threads');
    const net = require('net'), fs = require('fs');
    const { transferToSync } = require(workerData.lib);
    const c = net.connect(workerData.port, '127.0.0.1', () => {
      const fd = fs.openSync(workerData.file, 'r');
      const n = transferToSync(c._handle.fd, fd, 3, workerData.length);
      fs.closeSync(fd);
      c.end(() => parentPort.postMessage(n));
    });`,
    {
      eval: true,
      workerData: { lib: compiledLib(), port, file, length: 16 * MiB },
    },
  );
  const sent = await new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  const got = await server.next();
  const want = sha256OfRange(file, 3, 16 * MiB);
  t.equal(sent, 16 * MiB);
  t.equal(got.sha256, want.hex, 'bytes exact');
  await w.terminate();
});

t.test('bad arguments: one row each, precise errors, never a crash', async (t) => {
  const fd = fs.openSync(file, 'r');
  const dirFd = fs.openSync(dir, 'r');
  const writeOnly = fs.openSync(join(dir, 'wo'), 'w');
  const readOnlyOut = fs.openSync(file, 'r');
  const zero = fs.openSync('/dev/zero', 'r');
  const server = await hashServer('tcp', dir);
  const sock = await server.connect();
  const sockFd = fdOf(sock);
  const handle = await open(file, 'r');
  const closedHandle = await open(file, 'r');
  await closedHandle.close();
  // A real pipe: a child's stdout.
  const child = spawn('sleep', ['30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const pipeFd = (child.stdout as unknown as { _handle: { fd: number } })._handle.fd;
  t.teardown(async () => {
    child.kill();
    for (const f of [fd, dirFd, writeOnly, readOnlyOut, zero]) fs.closeSync(f);
    await handle.close();
    sock.destroy();
    await server.close();
  });

  const out = sockFd;
  // Closed last, so no open above reuses its number before the rows run.
  const closedFd = fs.openSync(file, 'r');
  fs.closeSync(closedFd);
  const rows: Array<[string, unknown[], { code: string; name?: string; syscall?: string }]> = [
    ['outFd -1', [-1, fd, 0, 1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ['outFd 2^31', [2 ** 31, fd, 0, 1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ['outFd 1.5', [1.5, fd, 0, 1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ['outFd NaN', [NaN, fd, 0, 1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ["outFd '3'", ['3', fd, 0, 1], { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }],
    ['outFd undefined', [undefined, fd, 0, 1], { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }],
    ['outFd a FileHandle', [handle, fd, 0, 1], { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }],
    ['outFd closed', [closedFd, fd, 0, 1], { code: 'EBADF', syscall: 'sendfile' }],
    ['outFd read-only', [readOnlyOut, fd, 0, 1], { code: 'EBADF', syscall: 'sendfile' }],
    ['inFd -1', [out, -1, 0, 1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ['inFd 2^31', [out, 2 ** 31, 0, 1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ['inFd 1.5', [out, 1.5, 0, 1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ["inFd '3'", [out, '3', 0, 1], { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }],
    ['inFd NaN', [out, NaN, 0, 1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ['inFd undefined', [out, undefined, 0, 1], { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }],
    ['inFd closed', [out, closedFd, 0, 1], { code: 'EBADF', syscall: 'sendfile' }],
    ['inFd never opened (2^31-1)', [out, 2 ** 31 - 1, 0, 1], { code: 'EBADF', syscall: 'sendfile' }],
    ['inFd a closed FileHandle', [out, closedHandle, 0, 1], { code: 'EBADF', syscall: 'sendfile' }],
    ['inFd a directory', [out, dirFd, 0, 1], { code: 'EISDIR', syscall: 'sendfile' }],
    ['inFd a pipe', [out, pipeFd, 0, 1], { code: 'ESPIPE', syscall: 'sendfile' }],
    ['inFd a socket', [out, sockFd, 0, 1], { code: 'ESPIPE', syscall: 'sendfile' }],
    ['inFd write-only', [out, writeOnly, 0, 1], { code: 'EBADF', syscall: 'sendfile' }],
    ['inFd /dev/zero', [out, zero, 0, 1], { code: 'EINVAL', syscall: 'sendfile' }],
    ['offset -1', [out, fd, -1, 1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ['offset 1.5', [out, fd, 1.5, 1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ['offset 2^53', [out, fd, 2 ** 53, 1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ["offset '0'", [out, fd, '0', 1], { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }],
    ['offset undefined', [out, fd, undefined, 1], { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }],
    ['length -1', [out, fd, 0, -1], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ['length NaN', [out, fd, 0, NaN], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ['length Infinity', [out, fd, 0, Infinity], { code: 'ERR_OUT_OF_RANGE', name: 'RangeError' }],
    ['length undefined', [out, fd, 0, undefined], { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' }],
  ];
  for (const [what, args, want] of rows) {
    const call = transferTo as unknown as (...a: unknown[]) => Promise<number>;
    const callSync = transferToSync as unknown as (...a: unknown[]) => number;
    await t.rejects(call(...args), want, `transferTo: ${what}`);
    t.throws(() => callSync(...args), want, `transferToSync: ${what}`);
  }
  await t.rejects(transferTo(out, fd, 0, 1, 'x' as never), { code: 'ERR_INVALID_ARG_TYPE' }, 'options not an object');
  await t.rejects(transferTo(out, fd, 0, 1, { signal: 1 as never }), { code: 'ERR_INVALID_ARG_TYPE' }, 'signal not an AbortSignal');
  const err = await transferTo(out, closedFd, 0, 1).catch((e) => e);
  t.match(err, { message: 'EBADF: bad file descriptor, sendfile', errno: -9, bytesSent: 0 }, 'shaped like a Node fs error');
  t.equal(transferToSync(out, handle, 0, 0), 0, 'a FileHandle as the source works, length 0 gives 0');
});

t.test('abort: before the start, and while waiting for a stalled receiver', async (t) => {
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  let peer: net.Socket | undefined;
  const server = await hashServer('tcp', dir, (s) => {
    peer = s;
    s.pause(); // reads nothing: the send fills the buffers and parks
  });
  const c = await server.connect();
  t.teardown(async () => {
    c.destroy();
    await server.close();
  });
  const pre = new AbortController();
  const why = new Error('not today');
  pre.abort(why);
  await t.rejects(
    transferTo(fdOf(c), fd, 0, MiB, { signal: pre.signal }),
    { name: 'AbortError', code: 'ABORT_ERR', cause: why, bytesSent: 0 },
    'an aborted signal rejects at once, with the reason and bytesSent 0',
  );

  const ac = new AbortController();
  const p = transferTo(fdOf(c), fd, 0, SIZE, { signal: ac.signal });
  while (stats().waiting === 0) await sleep(5);
  t.equal(stats().waiting, 1, 'the send waits in the poller, holding no thread');
  const t0 = Date.now();
  ac.abort();
  const err = await p.catch((e) => e);
  const ms = Date.now() - t0;
  t.match(err, { name: 'AbortError', code: 'ABORT_ERR' });
  t.ok(err.bytesSent > 0 && err.bytesSent < SIZE, `bytesSent ${err.bytesSent}: what reached the socket`);
  t.comment(`settled ${ms} ms after the abort`); // behaviour: it settled while the receiver still did not read
  t.equal(stats().waiting, 0, 'nothing left parked');
  peer?.resume();
});

t.test('peer resets mid-send: EPIPE/ECONNRESET with bytesSent, the process lives', async (t) => {
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  const server = await hashServer('tcp', dir, (s) => {
    let n = 0;
    s.on('data', (d: Buffer) => {
      n += d.length;
      if (n > 2 * MiB) s.resetAndDestroy();
    });
  });
  t.teardown(() => server.close());
  const c = await server.connect();
  c.on('error', () => undefined); // Node's own reads see the reset too
  c.pause();
  const err = await transferTo(fdOf(c), fd, 0, SIZE).catch((e) => e);
  // The fallback writes to the caller's descriptor itself: if Node has
  // already closed the socket it saw reset, that is EBADF (documented).
  const codes = capabilities().native ? /^(EPIPE|ECONNRESET)$/ : /^(EPIPE|ECONNRESET|EBADF)$/;
  t.match(err, { code: codes, syscall: 'sendfile' }, `rejects with ${err.code}`);
  t.ok(err.bytesSent >= 2 * MiB && err.bytesSent < SIZE, `bytesSent ${err.bytesSent}`);
  c.destroy();
});

t.test('SIGPIPE at its default disposition never kills the process (main thread and worker, sync and async)', async (t) => {
  const out = execFileSync(process.execPath, [join(__dirname, 'fixtures/sigpipe-child.js')], {
    env: { ...process.env, PAGEWARM_LIB: compiledLib(), PAGEWARM_SIGPIPE_FILE: file },
    encoding: 'utf8',
    timeout: 60_000,
  });
  const r = JSON.parse(out);
  if (capabilities().native) {
    t.equal(r.disposition, 'default', 'the child really runs with SIGPIPE at SIG_DFL');
  } else {
    // The fallback cannot block SIGPIPE per call: it keeps a no-op listener instead.
    t.equal(r.disposition, 'caught', 'the fallback keeps SIGPIPE caught (a no-op listener of its own)');
  }
  for (const where of ['main', 'worker']) {
    t.equal(r[where].length, 6, `${where}: every attempt returned`);
    for (const outcome of r[where]) t.match(outcome, /^(sync|async):(EPIPE|ECONNRESET)$/, `${where}: ${outcome}`);
    t.ok(r[where].includes('sync:EPIPE') && r[where].includes('async:EPIPE'), `${where}: EPIPE seen (that raises SIGPIPE)`);
  }
});

t.test('closing the source while the send is in flight, its number reused at once', async (t) => {
  const other = randomFile(join(dir, 'other'), 4 * MiB);
  const { sent, got, reused } = await sendWhileNumberReused(dir, file, other, (c, fd) => transferTo(fdOf(c), fd, 0, SIZE));
  t.ok(reused, 'the kernel handed out the same number');
  t.equal(sent, SIZE);
  t.equal(got.sha256, sha256OfRange(file, 0, SIZE).hex, 'every byte came from the file the call was given');
});

t.test('a worker terminated while its send waits for a stalled receiver', async (t) => {
  const peers: net.Socket[] = [];
  const server = await hashServer('tcp', dir, (s) => {
    s.pause();
    peers.push(s);
  });
  t.teardown(() => server.close());
  const port = (server.server.address() as net.AddressInfo).port;
  // pagewarm's threads and its poller (an epoll and an eventfd) start with
  // the first send of the process, and stay: start them before counting.
  const warmFd = fs.openSync(file, 'r');
  const probe = await server.connect();
  await transferTo(fdOf(probe), warmFd, 0, 1);
  probe.destroy();
  fs.closeSync(warmFd);
  while (peers.length < 1) await sleep(5);
  peers.shift()!.destroy();
  await server.next();
  await sleep(50);
  const beforeList = fdList();
  const before = fdCount();
  const ROUNDS = 3;
  for (let round = 0; round < ROUNDS; round++) {
    const w = new Worker(
      `
      const { parentPort, workerData } = require('worker_threads');
      const net = require('net'), fs = require('fs');
      const { transferTo, stats } = require(workerData.lib);
      const c = net.connect(workerData.port, '127.0.0.1', async () => {
        const fd = fs.openSync(workerData.file, 'r');
        transferTo(c._handle.fd, fd, 0, workerData.length).catch(() => {});
        while (stats().waiting === 0) await new Promise((r) => setTimeout(r, 5));
        parentPort.postMessage('parked');
      });`,
      { eval: true, workerData: { lib: compiledLib(), port, file, length: SIZE } },
    );
    await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
  }
  for (let i = 0; i < 200 && stats().waiting > 0; i++) await sleep(10);
  t.equal(stats().waiting, 0, 'no send is left parked for a worker that is gone');
  // The worker's socket closes only when pagewarm drops its duplicate: the
  // stalled peers must see the connections end.
  for (const p of peers) p.resume();
  const ends = await Promise.all(peers.map(() => server.next()));
  t.equal(ends.length, ROUNDS);
  for (const e of ends) t.ok(['end', 'close', 'ECONNRESET'].includes(e.how), `peer saw the connection end (${e.how})`);
  for (const p of peers) p.destroy();
  for (let i = 0; i < 100 && fdCount() > before; i++) await sleep(20);
  if (fdCount() !== before) t.comment(`descriptors before: ${beforeList.join(' ')}\nafter: ${fdList().join(' ')}`);
  t.equal(fdCount(), before, 'no descriptor leaked');
});

t.test('the open descriptor count is unchanged after 2,000 calls', async (t) => {
  const server = await hashServer('unix', dir);
  t.teardown(() => server.close());
  const c = await server.connect();
  const fd = fs.openSync(file, 'r');
  const closedFd = fs.openSync(file, 'r');
  fs.closeSync(closedFd);
  const before = fdCount();
  let bytes = 0;
  for (let i = 0; i < 1000; i++) {
    bytes += await transferTo(fdOf(c), fd, i * 97, 4 * KiB);
    // A small resident range is sent from this thread (no event-loop turn),
    // and transferToSync polls a full socket: let the receiver, which runs on
    // this thread too, drain it.
    await new Promise(setImmediate);
    bytes += transferToSync(fdOf(c), fd, i * 89, 512);
    if (i % 100 === 0) {
      await transferTo(fdOf(c), closedFd, 0, 1).catch(() => undefined);
      try {
        transferToSync(fdOf(c), closedFd, 0, 1);
      } catch {
        /* EBADF */
      }
    }
  }
  t.equal(fdCount(), before, 'no descriptor leaked');
  fs.closeSync(fd);
  c.end();
  const got = await server.next();
  t.equal(got.bytes, bytes, 'the receiver got every byte');
});

t.test('small resident ranges are sent from the JS thread first; the rest, cold, large or blocked ones on the pool', async (t) => {
  const native = capabilities().native;
  let accepted: net.Socket | undefined;
  const server = await hashServer('tcp', dir, (s) => {
    accepted = s;
  });
  t.teardown(() => server.close());
  const c = await server.connect();
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  const inline = (): number => stats().inlineSends;
  const data = fs.readFileSync(file); // every page in the cache
  const sent: Buffer[] = []; // what the receiver must get, in order
  let bytes = 0;
  const send = async (offset: number, length: number, from = fd, bytesOf = data): Promise<number> => {
    const n = await transferTo(fdOf(c), from, offset, length);
    t.equal(n, length, `[${offset}, +${length}): all of it`);
    sent.push(bytesOf.subarray(offset, offset + length));
    bytes += n;
    return n;
  };
  // Resident, 64 KiB: one inline send (native), no thread hop.
  let before = inline();
  await send(0, 64 * KiB);
  t.equal(inline(), before + (native ? 1 : 0), native ? 'resident 64 KiB: begun on the JS thread' : 'fallback: never');
  // 128 KiB is the largest range sent that way; one byte more goes to the pool.
  before = inline();
  await send(64 * KiB, 128 * KiB);
  t.equal(inline(), before + (native ? 1 : 0), '128 KiB: still inline');
  before = inline();
  await send(192 * KiB, 128 * KiB + 1);
  t.equal(inline(), before, '128 KiB + 1: on the pool');
  // Cold: never sent from the JS thread (it could wait for the disk). A
  // file no other test sent: pages of `file` may still be held by earlier
  // tests' socket buffers (sendfile shares them), which eviction cannot drop
  // (seen with the machine loaded: 5 evictions in a row left the range
  // resident). makeCold checks the range is cold (a precondition).
  const coldPath = randomFile(join(dir, 'cold-inline'), 2 * MiB);
  const coldData = fs.readFileSync(coldPath);
  const coldFd = fs.openSync(coldPath, 'r');
  t.teardown(() => fs.closeSync(coldFd));
  const cold = await makeCold(t, coldFd);
  before = inline();
  await send(0, 64 * KiB, coldFd, coldData);
  if (cold) t.equal(inline(), before, 'cold range: on the pool');
  // A full socket: the inline attempt sends what fits and the rest waits in
  // the poller, completing once the receiver reads again; bytes in order.
  accepted!.pause();
  fs.readFileSync(file);
  before = inline();
  let blocked: Promise<number> | undefined;
  for (let pos = 0; !blocked && pos + 100 * KiB <= SIZE; pos += 100 * KiB) {
    const p = transferTo(fdOf(c), fd, pos, 100 * KiB);
    sent.push(data.subarray(pos, pos + 100 * KiB));
    const r = await Promise.race([p, sleep(100).then(() => 'blocked' as const)]);
    if (r === 'blocked') blocked = p;
    else bytes += r;
  }
  t.ok(blocked, 'the socket filled: a send waits');
  if (native) {
    t.ok(stats().waiting > 0, 'in the poller');
    t.ok(inline() > before, 'the sends before it, and its first part, went from the JS thread');
  }
  accepted!.resume();
  t.equal(await blocked, 100 * KiB, 'the blocked send completed in full');
  bytes += 100 * KiB;
  c.end();
  const got = await server.next();
  t.equal(got.bytes, bytes, 'the receiver got every byte');
  t.equal(got.sha256, sha256(...sent), 'in order, byte-exact');
});
