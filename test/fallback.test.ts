// The portable fallback (lib/fallback/): the whole API with the same
// results and the same errors as the native addon, judged side by side with
// the native build where it loads. Under PAGEWARM_FORCE_FALLBACK=1 the
// "native" side is the fallback too, and the fixed expectations still hold.
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as real from '../lib/index';
import * as nativeModule from '../lib/core/native';
import { fallbackBinding } from '../lib/fallback/index';
import type { NativeFailure } from '../lib/core/errors';
import { scratchDir, makeFile } from './helpers';

type Api = typeof import('../lib/index');

/** A fresh copy of the public API whose binding is the fallback. */
function fallbackApi(): { api: Api; binding: nativeModule.Binding } {
  const binding = fallbackBinding();
  const api = t.mockRequire<Api>('../lib/index', {
    '../lib/core/native': { ...nativeModule, binding, isNative: false, fallbackReason: 'test: fallback forced' },
  });
  return { api, binding };
}

const { api: fb } = fallbackApi();
const nativeLoaded = nativeModule.isNative;
const dir = scratchDir('pagewarm-fallback-');
const SIZE = (1 << 20) + 123;
const file = makeFile(join(dir, 'data'), SIZE);
const O_PATH = 0o10000000;

interface Outcome {
  ok: boolean;
  sync?: boolean;
  value?: unknown;
  name?: string;
  code?: string;
  errno?: number;
  syscall?: string;
  message?: string;
}

/** What a call did: its value, or its error and whether it was thrown synchronously. */
async function outcome(fn: () => unknown): Promise<Outcome> {
  let sync = true; // an error thrown before a promise was returned
  try {
    const p = fn();
    sync = false;
    const value = await p;
    return value === undefined ? { ok: true } : { ok: true, value };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { ok: false, sync, name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, message: e.message };
  }
}

/** Descriptors of every kind the native FileRef tells apart; fresh ones per call. */
async function descriptors(): Promise<{ fds: Record<string, number>; close(): void }> {
  const fifo = join(dir, `fifo-${Math.random().toString(36).slice(2)}`);
  execFileSync('mkfifo', [fifo]);
  const server = net.createServer((s) => s.on('error', () => {}));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  const fds: Record<string, number> = {
    closed: 999_999, // never open here (a closed number would be reused at once)
    directory: fs.openSync(dir, 'r'),
    pipe: fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK),
    socket: (client as unknown as { _handle: { fd: number } })._handle.fd,
    writeOnly: fs.openSync(join(dir, 'write-only'), 'w'),
    devZero: fs.openSync('/dev/zero', 'r'),
    oPath: fs.openSync(file, O_PATH),
  };
  return {
    fds,
    close() {
      for (const [name, fd] of Object.entries(fds)) if (name !== 'closed' && name !== 'socket') fs.closeSync(fd);
      client.destroy();
      server.close();
    },
  };
}

// What native says for each kind (checked on this machine by the native side when it loads).
const WARM_ERRORS: Record<string, string> = {
  closed: 'EBADF',
  directory: 'EISDIR',
  pipe: 'ESPIPE',
  socket: 'ESPIPE',
  writeOnly: 'EBADF',
  devZero: 'EINVAL',
  oPath: 'EBADF',
};
const ADVISE_ERRORS: Record<string, string | undefined> = { closed: 'EBADF', pipe: 'ESPIPE', oPath: 'EBADF' };

t.test('capabilities say the fallback is in use, and why', async (t) => {
  const caps = fb.capabilities();
  t.match(caps, { native: false, zeroCopySend: false, cachestat: false, fastPath: false, fallbackReason: 'test: fallback forced' });
  const pageSize = Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }));
  t.equal(caps.pageSize, pageSize, 'the real page size (from the auxiliary vector)');
  if (process.env.PAGEWARM_FORCE_FALLBACK === '1') {
    t.match(real.capabilities(), { native: false, fallbackReason: 'PAGEWARM_FORCE_FALLBACK=1' }, 'the env var forces it');
  }
});

t.test('the loader falls back where the addon cannot load', async (t) => {
  const warned = new Promise<Error>((resolve) => process.once('warning', resolve));
  const failed = t.mockRequire<typeof nativeModule>('../lib/core/native', {
    'node-gyp-build': () => {
      throw new Error('No native build was found for platform=linux arch=riscv64');
    },
  });
  if (process.env.PAGEWARM_FORCE_FALLBACK === '1') {
    t.equal(failed.isNative, false);
    t.equal(failed.fallbackReason, 'PAGEWARM_FORCE_FALLBACK=1', 'the env var wins before loading is tried');
    return;
  }
  t.equal(failed.isNative, false, 'a load failure means the fallback');
  t.match(failed.fallbackReason, /native addon did not load: No native build was found/);
  const warning = await warned;
  t.match(
    warning,
    { name: 'Warning', code: 'PAGEWARM_FALLBACK', message: /^pagewarm: native addon did not load: No native build was found.*portable fallback/ },
    'on Linux a load failure is announced once, as a process warning',
  );
  t.type(failed.binding.warm, 'function');
  const unsupported = t.mockRequire<typeof nativeModule>('../lib/core/native', { 'node-gyp-build': () => ({ unsupported: true }) });
  t.equal(unsupported.isNative, false, 'the stub addon of other platforms means the fallback');
  t.match(unsupported.fallbackReason, /no native support on linux/);
  let more = 0;
  const count = (): number => more++;
  process.on('warning', count);
  await new Promise((r) => setImmediate(r));
  process.off('warning', count);
  t.equal(more, 0, 'the stub addon of other platforms is the normal path there: no warning');
});

t.test('bad descriptors: the same errors as native', async (t) => {
  const calls: Array<[string, (api: Api, fd: number) => unknown, Record<string, string | undefined>]> = [
    ['prepareForRead', (api, fd) => api.prepareForRead(fd), WARM_ERRORS],
    ['prepareForReadSync', (api, fd) => api.prepareForReadSync(fd), WARM_ERRORS],
    ['residency', (api, fd) => api.residency(fd), WARM_ERRORS],
    ['residencySync', (api, fd) => api.residencySync(fd), WARM_ERRORS],
    ['evict', (api, fd) => api.evict(fd), ADVISE_ERRORS],
    ['advise', (api, fd) => api.advise(fd, 0, 4096, 'willneed'), ADVISE_ERRORS],
  ];
  const mine = await descriptors();
  const theirs = await descriptors();
  t.teardown(() => {
    mine.close();
    theirs.close();
  });
  for (const [name, call, expected] of calls) {
    for (const kind of Object.keys(WARM_ERRORS)) {
      const got = await outcome(() => call(fb, mine.fds[kind]));
      const want = expected[kind];
      if (want === undefined) {
        t.equal(got.ok, true, `${name}(${kind}) succeeds`);
      } else {
        t.match(got, { ok: false, code: want }, `${name}(${kind}) -> ${want}`);
        t.equal(got.errno, -(execErrno(want)), `${name}(${kind}) errno`);
      }
      const native = await outcome(() => call(real, theirs.fds[kind]));
      // Residency errors name the syscall native would use here (cachestat on
      // Linux >= 6.5, else mincore), although the fallback calls neither.
      const strip = (o: Outcome): Outcome => {
        const { value: _value, ...rest } = o; // residency values differ (unknown vs counts)
        return rest;
      };
      t.same(strip(got), strip(native), `${name}(${kind}): same outcome as ${nativeLoaded ? 'native' : 'the default binding'}`);
    }
  }
});

/** errno numbers as Node reports them (positive), from the system's table. */
function execErrno(code: string): number {
  return (require('node:os').constants.errno as Record<string, number>)[code];
}

t.test('bad arguments: the same TypeErrors and RangeErrors, thrown or rejected the same way', async (t) => {
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  const values: unknown[] = [-1, 2 ** 31, 1.5, '3', NaN, undefined, null, {}, 2 ** 53];
  const positions: unknown[] = [-1, 1.5, 2 ** 53, '0', NaN];
  const cases: Array<[string, (api: Api) => unknown]> = [];
  for (const v of values) {
    cases.push([`prepareForRead(${String(v)})`, (api) => api.prepareForRead(v as number)]);
    cases.push([`prepareForReadSync(${String(v)})`, (api) => api.prepareForReadSync(v as number)]);
    cases.push([`residencySync(${String(v)})`, (api) => api.residencySync(v as number)]);
    cases.push([`evict(${String(v)})`, (api) => api.evict(v as number)]);
  }
  for (const p of positions) {
    cases.push([`prepareForRead(fd, ${String(p)})`, (api) => api.prepareForRead(fd, p as number)]);
    cases.push([`prepareForRead(fd, 0, ${String(p)})`, (api) => api.prepareForRead(fd, 0, p as number)]);
    cases.push([`residency(fd, ${String(p)})`, (api) => api.residency(fd, p as number)]);
    cases.push([`advise(fd, 0, ${String(p)})`, (api) => api.advise(fd, 0, p as number, 'normal')]);
  }
  cases.push(['advise(bogus)', (api) => api.advise(fd, 0, 0, 'bogus' as 'normal')]);
  cases.push(['prepareForRead(signal: {})', (api) => api.prepareForRead(fd, 0, 1, { signal: {} as AbortSignal })]);
  cases.push(['warmFile(missing)', (api) => api.warmFile(join(dir, 'missing'))]);
  cases.push(['warmFile(42)', (api) => api.warmFile(42 as unknown as string)]);
  cases.push(['configure({ threads: 0 })', (api) => api.configure({ threads: 0 })]);
  cases.push(['configure({ chunkSize: 1 })', (api) => api.configure({ chunkSize: 1 })]);
  for (const [name, call] of cases) {
    const got = await outcome(() => call(fb));
    const want = await outcome(() => call(real));
    t.same(got, want, name);
    t.equal(got.ok, false, `${name} fails`);
  }
});

t.test('ranges: the same byte counts and page counts as native', async (t) => {
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  const ranges: Array<[number | undefined, number | undefined]> = [
    [undefined, undefined],
    [0, 0],
    [0, 1],
    [4095, 2],
    [4096, 10000],
    [SIZE - 5, 100],
    [SIZE, 10],
    [SIZE + 10, undefined],
    [2 ** 40, 4096],
    [123, undefined],
  ];
  for (const [offset, length] of ranges) {
    const label = `[${offset}, ${length}]`;
    const want = await real.prepareForRead(fd, offset, length);
    t.equal(await fb.prepareForRead(fd, offset, length), want, `prepareForRead ${label} = ${want}`);
    t.equal(fb.prepareForReadSync(fd, offset, length), want, `prepareForReadSync ${label}`);
    const r = await fb.residency(fd, offset, length);
    const n = real.residencySync(fd, offset, length);
    t.match(r, { source: 'unknown', residentPages: null, residentBytes: null }, `residency ${label} never claims residency`);
    t.same([r.pages, r.bytes], [n.pages, n.bytes], `residency ${label}: ${n.pages} pages, ${n.bytes} bytes`);
    t.same(fb.residencySync(fd, offset, length), r, `residencySync ${label}`);
    t.notOk('dirtyPages' in r, 'no cachestat-only fields');
  }
  t.equal(await fb.warmFile(file, { offset: 10, length: 20 }), 20, 'warmFile');
  t.equal(await fb.prepareForRead(await fs.promises.open(file, 'r').then((h) => (t.teardown(() => h.close()), h))), SIZE, 'a FileHandle');
});

t.test('advice and evict are checked, then do nothing; counters count reads', async (t) => {
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  for (const advice of ['normal', 'sequential', 'random', 'willneed', 'dontneed', 'noreuse'] as const) {
    t.equal(fb.advise(fd, 0, 0, advice), undefined, advice);
  }
  t.equal(fb.evict(fd), undefined);
  const before = fb.stats();
  t.equal(await fb.prepareForRead(fd), SIZE);
  const after = fb.stats();
  t.equal(after.warmedBytes - before.warmedBytes, SIZE, 'warmedBytes');
  t.equal(after.fallbackReads - before.fallbackReads, 2, 'one read per MiB');
  t.match(after, { fastPathHits: 0, sendfileChunks: 0, queued: 0, active: 0, waiting: 0 });
  fb.configure({ threads: 2, chunkSize: 64 << 10 });
  t.match(fb.stats(), { threads: 2, chunkSize: 64 << 10 });
  const r2 = fb.stats().fallbackReads;
  await fb.prepareForRead(fd);
  t.equal(fb.stats().fallbackReads - r2, Math.ceil(SIZE / (64 << 10)), 'reads follow the chunk size');
  fb.configure({ threads: 4, chunkSize: 8 << 20 });
});

t.test('abort: before start and mid-range, AbortError with the reason', async (t) => {
  const big = makeFile(join(dir, 'big'), 64 << 20);
  const fd = fs.openSync(big, 'r');
  t.teardown(() => fs.closeSync(fd));
  const reason = new Error('stop');
  await t.rejects(fb.prepareForRead(fd, 0, undefined, { signal: AbortSignal.abort(reason) }), {
    name: 'AbortError',
    code: 'ABORT_ERR',
    cause: reason,
  });
  fb.configure({ chunkSize: 4096 }); // 16384 reads: the abort lands mid-range
  t.teardown(() => fb.configure({ chunkSize: 8 << 20 }));
  const ac = new AbortController();
  const before = fb.stats().warmedBytes;
  const p = fb.prepareForRead(fd, 0, undefined, { signal: ac.signal });
  setTimeout(() => ac.abort(reason), 20);
  await t.rejects(p, { name: 'AbortError', code: 'ABORT_ERR', cause: reason });
  const warmed = fb.stats().warmedBytes - before;
  t.ok(warmed > 0 && warmed < 64 << 20, `stopped part-way (${warmed} bytes read)`);
  t.equal(fb.stats().active + fb.stats().queued, 0, 'nothing left running');
});

t.test('a descriptor closed mid-flight, its number reused: the warm-up still reads the first file', async (t) => {
  const a = makeFile(join(dir, 'a'), 8 << 20);
  const b = makeFile(join(dir, 'b'), 4096);
  const fdA = fs.openSync(a, 'r');
  const p = fb.prepareForRead(fdA);
  fs.closeSync(fdA);
  const fdB = fs.openSync(b, 'r');
  t.teardown(() => fs.closeSync(fdB));
  t.equal(fdB, fdA, 'the number was reused');
  t.equal(await p, 8 << 20, 'all of file A, not file B');
});

t.test('O_DIRECT descriptors are read through a buffered reopen', async (t) => {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  t.teardown(() => fs.closeSync(fd));
  const before = fb.stats().directReopens;
  t.equal(await fb.prepareForRead(fd, 1, 10), 10, 'async, unaligned');
  t.equal(fb.prepareForReadSync(fd, 3, 5), 5, 'sync, unaligned');
  t.equal(fb.stats().directReopens - before, 2, 'counted');
});

t.test('fairness: a small warm-up is not stuck behind a large one', async (t) => {
  const big = makeFile(join(dir, 'fair-big'), 32 << 20);
  const small = makeFile(join(dir, 'fair-small'), 4096);
  const bigFd = fs.openSync(big, 'r');
  const smallFd = fs.openSync(small, 'r');
  t.teardown(() => {
    fs.closeSync(bigFd);
    fs.closeSync(smallFd);
  });
  fb.configure({ threads: 1, chunkSize: 4096 }); // one read at a time, 8192 of them for the big file
  t.teardown(() => fb.configure({ threads: 4, chunkSize: 8 << 20 }));
  const order: string[] = [];
  const large = fb.prepareForRead(bigFd).then(() => order.push('big'));
  await new Promise((resolve) => setTimeout(resolve, 5));
  t.ok(fb.stats().active + fb.stats().queued > 0, 'the big one is running');
  await fb.prepareForRead(smallFd).then(() => order.push('small'));
  await large;
  t.same(order, ['small', 'big']);
});

t.test('send copies: same bytes and errors as native', async (t) => {
  const fd = fs.openSync(file, 'r');
  const expected = fs.readFileSync(file);
  t.teardown(() => fs.closeSync(fd));
  const sinks = [fallbackBinding(), nativeModule.binding];
  for (const [i, binding] of sinks.entries()) {
    const who = i === 0 ? 'fallback' : nativeLoaded ? 'native' : 'default';
    const outPath = join(dir, `sent-${i}`);
    const out = fs.openSync(outPath, 'w');
    t.equal(await binding.send(out, fd, 100, 5000, 1), 5000, `${who}: send`);
    t.equal(binding.sendSync(out, fd, 0, -1), SIZE, `${who}: sendSync to the end`);
    fs.closeSync(out);
    t.same(fs.readFileSync(outPath), Buffer.concat([expected.subarray(100, 5100), expected]), `${who}: the right bytes`);
    const ro = fs.openSync(file, 'r');
    t.same(binding.sendSync(ro, fd, 0, 10), { errno: execErrno('EBADF'), syscall: 'sendfile' }, `${who}: read-only destination`);
    fs.closeSync(ro);
    const dirFd = fs.openSync(dir, 'r');
    const w = fs.openSync(join(dir, 'w'), 'w');
    t.same(binding.send(w, dirFd, 0, 10, 2), { errno: execErrno('EISDIR'), syscall: 'sendfile' }, `${who}: directory source`);
    t.equal(binding.send(w, fd, SIZE + 1, -1, 3), 0, `${who}: past the end`);
    fs.closeSync(dirFd);
    fs.closeSync(w);
  }
});

t.test('send to a slow non-blocking socket waits out EAGAIN and delivers every byte', async (t) => {
  const total = 32 << 20; // more than loopback's socket buffers can hold
  const src = makeFile(join(dir, 'net'), total);
  const fd = fs.openSync(src, 'r');
  t.teardown(() => fs.closeSync(fd));
  let received = 0;
  let peer: net.Socket | undefined;
  const server = net.createServer();
  const ended = new Promise<void>((resolve) => {
    server.on('connection', (s) => {
      peer = s;
      s.pause(); // reads nothing until the sender is seen waiting
      s.on('data', (d) => (received += d.length));
      s.on('end', resolve);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  const outFd = (client as unknown as { _handle: { fd: number } })._handle.fd;
  const binding = fallbackBinding();
  const sending = binding.send(outFd, fd, 0, -1, 7) as Promise<number>;
  const deadline = Date.now() + 20_000;
  while (binding.stats().waiting === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
  t.equal(binding.stats().waiting, 1, 'stats().waiting counts the send while the socket is full');
  peer!.resume();
  t.equal(await sending, total, 'all bytes sent');
  t.equal(binding.stats().waiting, 0, 'and no longer waiting');
  client.end();
  await ended;
  t.equal(received, total, 'and received');
});

t.test('a send whose destination is closed, its number reused: EBADF, nothing written to the newcomer', async (t) => {
  const src = makeFile(join(dir, 'net2'), 32 << 20);
  const fd = fs.openSync(src, 'r');
  t.teardown(() => fs.closeSync(fd));
  const server = net.createServer((s) => {
    s.pause(); // reads nothing: the send backs off
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  await new Promise((resolve) => client.once('connect', resolve));
  const outFd = (client as unknown as { _handle: { fd: number } })._handle.fd;
  const binding = fallbackBinding();
  const sending = (binding.send(outFd, fd, 0, -1, 9) as Promise<number>).then(
    () => undefined,
    (e: NativeFailure) => e,
  );
  const deadline = Date.now() + 20_000;
  while (binding.stats().waiting === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
  t.equal(binding.stats().waiting, 1, 'the send is waiting for the socket');
  client.destroy(); // closes the descriptor at once
  // Before the send's next write: open the newcomer until it gets the socket's
  // old number (lower free numbers go first).
  const newcomer = join(dir, 'newcomer');
  const opened: number[] = [];
  t.teardown(() => opened.forEach((o) => fs.closeSync(o)));
  while (opened.length < 1000 && !opened.includes(outFd)) opened.push(fs.openSync(newcomer, 'a'));
  t.ok(opened.includes(outFd), 'the number was reused');
  const err = await sending;
  t.match(err, { errno: execErrno('EBADF'), syscall: 'sendfile' }, 'EBADF');
  t.ok(err!.bytesSent! > 0 && err!.bytesSent! < 32 << 20, `bytesSent ${err!.bytesSent}`);
  t.equal(fs.statSync(newcomer).size, 0, 'not a byte went to the file that took the number');
});

t.test('the fallback works in worker threads', async (t) => {
  // Workers do not get the TypeScript loader: they use the compiled package (npm run build:ts).
  const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');
  t.ok(fs.existsSync(dist), 'the compiled package exists');
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const pw = require(workerData.dist);
     const fs = require('node:fs');
     const fd = fs.openSync(workerData.file, 'r');
     pw.prepareForRead(fd).then((n) => {
       parentPort.postMessage({ n, sync: pw.prepareForReadSync(fd, 0, 10), caps: pw.capabilities(), r: pw.residencySync(fd) });
     });`,
    {
      eval: true,
      workerData: { dist, file },
      env: { ...process.env, PAGEWARM_FORCE_FALLBACK: '1' },
    },
  );
  const msg = await new Promise<{ n: number; sync: number; caps: { native: boolean }; r: { source: string } }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  t.match(msg, { n: SIZE, sync: 10, caps: { native: false }, r: { source: 'unknown' } });
});

t.test('the fallback binding is used by the real API under PAGEWARM_FORCE_FALLBACK=1', async (t) => {
  const out = execFileSync(
    process.execPath,
    [
      ...process.execArgv,
      '-e',
      `const pw = require(${JSON.stringify(join(__dirname, '..', 'lib', 'index.ts'))});
       const fd = require('node:fs').openSync(${JSON.stringify(file)}, 'r');
       pw.prepareForRead(fd).then((n) => console.log(JSON.stringify({ n, caps: pw.capabilities(), stats: pw.stats() })));`,
    ],
    { env: { ...process.env, PAGEWARM_FORCE_FALLBACK: '1' }, encoding: 'utf8' },
  );
  const r = JSON.parse(out);
  t.match(r, { n: SIZE, caps: { native: false, fallbackReason: 'PAGEWARM_FORCE_FALLBACK=1' }, stats: { fallbackReads: 2, sendfileChunks: 0 } });
});
