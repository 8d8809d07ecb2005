// Property: garbage arguments to every public function give an error of the
// documented kind, never a crash, a hang or an undocumented error.
//
// Documented kinds: TypeError ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE,
// RangeError ERR_OUT_OF_RANGE, an AbortError (ABORT_ERR), or a Node-style
// system error (code 'EXXX', negative errno, syscall, message 'EXXX: ..., syscall').
// An exception thrown by the caller's own hostile getter or Proxy passes
// through unchanged. Async functions never throw synchronously (they reject);
// sync functions never return a promise. Successes have the documented shape.
//
// Each group runs in a child process (and one inside a worker thread), so a
// crash is caught: the child logs every call before making it, and the parent
// reports the last one. A last group calls the native binding and the
// portable fallback with the same arguments: their outcomes must agree.
//
// Reproduce with PAGEWARM_PROP_SEED=<seed>; PAGEWARM_GARBAGE_RUNS sets the
// runs per function (default 300, 100 under ASan: about 30 s here); PAGEWARM_GARBAGE_DUMP=<dir>
// writes each child's source there for debugging.
import t from 'tap';
import * as fs from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { scratchDir } from './helpers';

const root = join(__dirname, '..');
const dist = join(root, 'dist', 'cjs', 'index.js');
const dir = scratchDir();
const seed = process.env.PAGEWARM_PROP_SEED ? Number(process.env.PAGEWARM_PROP_SEED) : Date.now() % 2 ** 31;
const RUNS = Number(process.env.PAGEWARM_GARBAGE_RUNS ?? (process.env.PAGEWARM_ASAN === '1' ? 100 : 300)); // per function

/**
 * The harness, CommonJS source run by `node -e` or inside a Worker.
 * Globals it expects: DIST, DIR, LOG, SEED, RUNS, ONLY (function names or null),
 * COMPARE (also call the fallback with the same arguments: outcomes must agree).
 */
const harness = String.raw`
const fc = require('fast-check');
const fs = require('node:fs');
const net = require('node:net');
const util = require('node:util');
const { join } = require('node:path');
const { spawn } = require('node:child_process');
const pw = require(DIST);
const log = fs.openSync(LOG, 'w');

const HOSTILE = new Error('hostile getter');
const documentedKinds = [];

function documented(err) {
  if (err === HOSTILE) return 'hostile';
  if (err instanceof TypeError && (err.code === 'ERR_INVALID_ARG_TYPE' || err.code === 'ERR_INVALID_ARG_VALUE')) return err.code;
  if (err instanceof RangeError && err.code === 'ERR_OUT_OF_RANGE') return err.code;
  if (err instanceof Error && err.name === 'AbortError' && err.code === 'ABORT_ERR') return 'AbortError';
  // sendFile / sendFileResponse / serveFile: the socket and HTTP states they document.
  if (err instanceof Error && ['ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END', 'ERR_SOCKET_CLOSED', 'ERR_SOCKET_CLOSED_BEFORE_CONNECTION',
    'ERR_HTTP_HEADERS_SENT', 'ERR_HTTP_CONTENT_LENGTH_MISMATCH', 'ERR_INVALID_HTTP_TOKEN', 'ERR_INVALID_CHAR', 'ERR_HTTP_INVALID_HEADER_VALUE'].includes(err.code)) return err.code;
  if (err instanceof Error && typeof err.code === 'string' && /^E[A-Z0-9]+$/.test(err.code) && Number.isInteger(err.errno) &&
      err.errno < 0 && typeof err.syscall === 'string' && err.message.startsWith(err.code + ': ')) return 'system ' + err.code + ' ' + err.syscall;
  return null;
}

// Hostile values are made at call time: fast-check itself must not trip on them.
class Token {
  constructor(name) { this.name = name; }
  [util.inspect.custom]() { return '<' + this.name + '>'; }
}
const makeToken = {
  hostileGetter: () => ({ get fd() { throw HOSTILE; }, get signal() { throw HOSTILE; }, close() {} }),
  hostileProxy: () => new Proxy({}, {
    get() { throw HOSTILE; }, has() { throw HOSTILE; }, getPrototypeOf() { throw HOSTILE; },
    ownKeys() { throw HOSTILE; }, getOwnPropertyDescriptor() { throw HOSTILE; },
  }),
  // Sockets and HTTP requests are made fresh for each call (and cleaned up after it).
  freshSocket: (ctx) => ctx.socket(),
  destroyedSocket: async (ctx) => { const s = await ctx.socket(); s.destroy(); return s; },
  endedSocket: async (ctx) => { const s = await ctx.socket(); s.end(); return s; },
  httpReq: async (ctx) => (await ctx.pair()).req,
  httpRes: async (ctx) => (await ctx.pair()).res,
};
// Values travel boxed ({ v }): awaiting a hostile Proxy itself would trip its
// "then" trap inside the harness instead of inside pagewarm.
const asyncTokens = new Set(['freshSocket', 'destroyedSocket', 'endedSocket', 'httpReq', 'httpRes']);
async function materialize(v, depth, ctx) {
  if (v instanceof Token) return { v: asyncTokens.has(v.name) ? await makeToken[v.name](ctx) : makeToken[v.name](ctx) };
  if (depth < 2 && v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const proto = Object.getPrototypeOf(v);
    if (proto !== null && proto !== Object.prototype) return { v };
    const out = Object.create(proto);
    for (const k of Object.keys(v)) out[k] = (await materialize(v[k], depth + 1, ctx)).v;
    return { v: out };
  }
  return { v };
}

/** Per call: fresh sockets and one HTTP request/response pair, made on demand, destroyed after. */
function callContext(w) {
  const made = [];
  let pair;
  return {
    socket: async () => {
      const s = net.connect(w.sockPath);
      s.on('error', () => {});
      made.push(s);
      await new Promise((r) => s.once('connect', r));
      return s;
    },
    pair: () => (pair ??= w.httpPair().then((p) => (made.push(p.res, p.req.socket), p))),
    cleanup: () => { for (const m of made) { try { m.destroy(); } catch {} } },
  };
}

async function materializeArgs(a, ctx) {
  const out = [];
  for (const v of a) out.push((await materialize(v, 0, ctx)).v);
  return out;
}

function show(args) {
  return args.map((a) => {
    try { return util.inspect(a, { depth: 2, breakLength: Infinity, maxArrayLength: 5, maxStringLength: 40, showProxy: true }); }
    catch { return '<uninspectable>'; }
  }).join(', ');
}

async function world() {
  const file = join(DIR, 'file');
  fs.writeFileSync(file, Buffer.alloc(64 * 1024, 7));
  const fds = {
    read: fs.openSync(file, 'r'),
    append: fs.openSync(file, 'a'),
    dir: fs.openSync(DIR, 'r'),
    devnull: fs.openSync('/dev/null', 'r+'),
    devzero: fs.openSync('/dev/zero', 'r'),
  };
  fs.fsyncSync(fds.read); // so evict() can drop its pages
  // A descriptor number that is closed and stays closed (the kernel hands out the lowest free one).
  const closed = 4321;
  try { fs.closeSync(closed); } catch {}
  fds.closed = closed;
  // A FIFO and a socket drained by another process, so a blocking send to
  // either always finishes. The drainer exits when this process is gone.
  const fifo = join(DIR, 'fifo-' + process.pid);
  const sockPath = join(DIR, 'sock-' + process.pid);
  require('node:child_process').execFileSync('mkfifo', [fifo]);
  const drainer = spawn(process.execPath, ['-e', [
    "const [fifo, sock] = process.argv.slice(1); const parent = process.ppid;",
    "require('fs').createReadStream(fifo).resume();",
    "require('net').createServer((s) => { s.resume(); s.on('error', () => {}); }).listen(sock, () => console.log('up'));",
    "setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 500);"].join('\n'), fifo, sockPath],
    { stdio: ['ignore', 'pipe', 'ignore'] });
  fds.pipeR = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  fds.pipeW = fs.openSync(fifo, 'w'); // does not block: a reader exists
  await new Promise((resolve) => drainer.stdout.once('data', resolve));
  const socket = net.connect(sockPath);
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  fds.socket = socket._handle.fd;
  // An HTTP server whose requests are handed out one by one (for sendFileResponse and serveFile).
  const waiting = [];
  const http = require('node:http');
  const httpServer = http.createServer((req, res) => waiting.shift()({ req, res }));
  await new Promise((r) => httpServer.listen(0, '127.0.0.1', r));
  const httpPair = () => new Promise((resolve) => {
    waiting.push(resolve);
    http.get({ host: '127.0.0.1', port: httpServer.address().port, path: '/x?y', agent: false, headers: { range: 'bytes=0-99' } },
      (r) => { r.resume(); r.on('error', () => {}); }).on('error', () => {});
  });
  const handleOpen = await fs.promises.open(file, 'r');
  const handleClosed = await fs.promises.open(file, 'r');
  await handleClosed.close();
  const done = () => {
    for (const fd of Object.values(fds)) if (fd !== closed) try { fs.closeSync(fd); } catch {}
    socket.destroy();
    drainer.kill();
    httpServer.close();
    httpServer.closeAllConnections();
    return handleOpen.close();
  };
  return { file, fifo, sockPath, fds, socket, handleOpen, handleClosed, httpPair, done };
}

function arbitraries(w) {
  const fdNumbers = fc.constantFrom(
    ...Object.values(w.fds), -1, -0, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + w.fds.read, -(2 ** 32) + w.fds.read, 1e9, 1.5, NaN,
    Infinity, -Infinity, Number.MAX_SAFE_INTEGER, 2 ** 53, Number.MIN_VALUE, -(2 ** 53));
  const positions = fc.oneof(
    fc.constantFrom(0, 1, 4095, 4096, 65535, 65536, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, -1, -0, 0.5, NaN, Infinity, -Infinity, 1e300),
    fc.integer(), fc.double(), fc.maxSafeInteger());
  const hostileGetter = new Token('hostileGetter');
  const hostileProxy = new Token('hostileProxy');
  const signals = fc.constantFrom(AbortSignal.abort(), AbortSignal.abort(new Error('why')), new AbortController().signal,
    ...(COMPARE ? [] : [AbortSignal.timeout(1)]), { aborted: true }, hostileGetter);
  const special = fc.constantFrom(
    undefined, null, true, false, '', '3', 'dontneed', 'willneed', 'normal', 'x', Symbol('s'), () => 1, [], [3], {},
    w.handleOpen, w.handleClosed, hostileGetter, hostileProxy, Buffer.alloc(4), new Date(NaN), Object.create(null), 3n, -1n,
    w.file, w.fifo, DIR, join(DIR, 'missing'), 'a\u0000b', '/dev/null', '/proc/self/status', w.socket);
  const fakeHandles = fdNumbers.map((fd) => ({ fd, close() {} }));
  const junk = fc.anything({ withBigInt: true, withBoxedValues: true, withDate: true, withMap: true, withSet: true,
    withTypedArray: true, withNullPrototype: true, withSparseArray: true, maxDepth: 2 });
  const value = fc.oneof(
    { weight: 4, arbitrary: fdNumbers }, { weight: 3, arbitrary: positions }, { weight: 1, arbitrary: fakeHandles },
    { weight: 3, arbitrary: special }, { weight: 2, arbitrary: junk }, { weight: 1, arbitrary: signals });
  const options = fc.oneof(
    value,
    fc.record({
      signal: fc.oneof(signals, value), offset: fc.oneof(positions, value), length: fc.oneof(positions, value),
      threads: fc.oneof(fc.integer({ min: -2, max: 300 }), value), chunkSize: fc.oneof(fc.integer({ min: 0, max: 2 ** 31 }), value),
      warm: value, dropBehind: value,
    }, { requiredKeys: [] }));
  // Well-typed but edgy arguments, slot by slot, so calls get past the type checks.
  const often = (arb) => fc.oneof({ weight: 6, arbitrary: arb }, { weight: 1, arbitrary: value });
  const goodFd = fc.oneof({ weight: 3, arbitrary: fc.constant(w.fds.read) }, { weight: 3, arbitrary: fc.constantFrom(...Object.values(w.fds)) },
    { weight: 1, arbitrary: fc.constantFrom(w.handleOpen, w.handleClosed) }, { weight: 1, arbitrary: fakeHandles });
  const goodPos = fc.oneof(fc.constantFrom(undefined, 0, 1, 4095, 4096, 65535, 65536, 65537, 2 ** 32, 2 ** 53 - 1), fc.nat({ max: 1 << 20 }), positions);
  const goodSignal = fc.constantFrom(undefined, AbortSignal.abort(), new AbortController().signal);
  const slot = {
    fd: often(goodFd),
    pos: often(goodPos),
    opts: often(fc.record({ signal: often(goodSignal), offset: often(goodPos), length: often(goodPos) }, { requiredKeys: [] })),
    path: often(fc.constantFrom(w.file, w.fifo, DIR, join(DIR, 'missing'), '/dev/null', '/proc/self/status', '')),
    advice: often(fc.constantFrom('normal', 'sequential', 'random', 'willneed', 'dontneed', 'noreuse', 'NORMAL', 'none')),
    cfg: often(fc.record({ threads: often(fc.integer({ min: -1, max: 300 })), chunkSize: often(fc.integer({ min: 0, max: 1 << 30 })) }, { requiredKeys: [] })),
    outFd: often(fc.constantFrom(w.fds.devnull, w.fds.pipeW, w.fds.socket, w.fds.append, w.fds.read, w.fds.closed, w.fds.dir, w.fds.pipeR)),
    socket: often(fc.constantFrom(w.socket, new Token('freshSocket'), new Token('freshSocket'), new Token('destroyedSocket'), new Token('endedSocket'))),
    file: often(fc.oneof(goodFd, fc.constantFrom(w.file, w.fifo, DIR, join(DIR, 'missing'), '/dev/null', '/proc/self/status', 'a\u0000b'))),
    sendOpts: often(fc.record({ offset: often(goodPos), length: often(goodPos), warm: often(fc.boolean()), dropBehind: often(fc.boolean()),
      signal: often(goodSignal) }, { requiredKeys: [] })),
    httpReq: often(fc.constant(new Token('httpReq'))),
    httpRes: often(fc.constant(new Token('httpRes'))),
    respOpts: often(fc.record({ offset: often(goodPos), length: often(goodPos), statusCode: often(fc.integer({ min: 0, max: 1200 })),
      headers: often(fc.dictionary(fc.constantFrom('content-type', 'x-a', 'content-length', 'transfer-encoding', 'bad header'), fc.oneof(fc.string(), fc.nat()))),
      signal: often(goodSignal) }, { requiredKeys: [] })),
    serveOpts: often(fc.record({ root: often(fc.constantFrom(DIR, '/', join(DIR, 'missing'), 'relative', '')), etag: often(fc.boolean()),
      lastModified: often(fc.boolean()), maxAge: often(fc.integer({ min: -5, max: 1e10 })) }, { requiredKeys: [] })),
    urlPath: often(fc.constantFrom('/file', '/../etc/passwd', '/%2e%2e/x', '/a%00b', '/%zz', '/', w.file, '/fifo-x', '')),
  };
  return { value, options, slot };
}

// name, async?, arity, shape check for a success.
const isCount = (v) => Number.isSafeInteger(v) && v >= 0;
const isResidency = (v) => v && typeof v === 'object' && isCount(v.pages) && isCount(v.bytes) &&
  ['cachestat', 'mincore', 'unknown'].includes(v.source);
const isUndefined = (v) => v === undefined;
const isObject = (v) => v !== null && typeof v === 'object';
const isSendResult = (v) => isObject(v) && isCount(v.bytes) && typeof v.zeroCopy === 'boolean';
const isServeResult = (v) => isObject(v) && Number.isInteger(v.statusCode) && v.statusCode >= 100 && v.statusCode < 600 && isCount(v.bytes);
// name, async?, parameter kinds, shape check for a success, required parameters.
const targets = [
  ['prepareForRead', true, ['fd', 'pos', 'pos', 'opts'], isCount, 1],
  ['prepareForReadSync', false, ['fd', 'pos', 'pos'], isCount, 1],
  ['warmFile', true, ['path', 'opts'], isCount, 1],
  ['residency', true, ['fd', 'pos', 'pos'], isResidency, 1],
  ['residencySync', false, ['fd', 'pos', 'pos'], isResidency, 1],
  ['evict', false, ['fd', 'pos', 'pos'], isUndefined, 1],
  ['advise', false, ['fd', 'pos', 'pos', 'advice'], isUndefined, 4],
  ['configure', false, ['cfg'], isUndefined, 1],
  ['stats', false, [], isObject, 0],
  ['capabilities', false, [], isObject, 0],
  ['transferTo', true, ['outFd', 'fd', 'pos', 'pos', 'opts'], isCount, 4],
  ['transferToSync', false, ['outFd', 'fd', 'pos', 'pos'], isCount, 4],
  ['sendFile', true, ['socket', 'file', 'sendOpts'], isSendResult, 2],
  ['sendFileResponse', true, ['httpRes', 'file', 'respOpts'], isSendResult, 2],
  ['serveFile', true, ['httpReq', 'httpRes', 'urlPath', 'serveOpts'], isServeResult, 3],
];

// The same package again, on the portable fallback, for COMPARE runs.
function loadFallback() {
  const distDir = require('node:path').dirname(DIST);
  const saved = process.env.PAGEWARM_FORCE_FALLBACK;
  for (const k of Object.keys(require.cache)) if (k.startsWith(distDir)) delete require.cache[k];
  process.env.PAGEWARM_FORCE_FALLBACK = '1';
  try {
    return require(DIST);
  } finally {
    if (saved === undefined) delete process.env.PAGEWARM_FORCE_FALLBACK;
    else process.env.PAGEWARM_FORCE_FALLBACK = saved;
  }
}

/** What native and fallback must agree on: the error's class and code, or the value (shape for residency). */
function outcomeKey(name, r) {
  if ('err' in r) return r.err === HOSTILE ? 'hostile' : 'error ' + (r.err && r.err.name) + ' ' + (r.err && r.err.code);
  if (name === 'residency' || name === 'residencySync') return 'ok bytes=' + r.value.bytes + ' pages=' + r.value.pages;
  if (name === 'stats' || name === 'capabilities') return 'ok';
  return 'ok ' + util.inspect(r.value);
}

async function callOnce(name, isAsync, args, pkg = pw) {
  const fn = pkg[name];
  let returned;
  try {
    returned = fn(...args);
  } catch (err) {
    if (isAsync) return { bad: 'threw synchronously instead of rejecting: ' + util.inspect(err) };
    return { err };
  }
  if (!isAsync) {
    if (returned instanceof Promise) return { bad: 'a sync function returned a promise' };
    return { value: returned };
  }
  if (!(returned instanceof Promise)) return { bad: 'an async function returned ' + util.inspect(returned) };
  let timer;
  const hang = new Promise((resolve) => { timer = setTimeout(() => resolve({ bad: 'did not settle within 10 s (hang)' }), 10000); });
  try {
    return await Promise.race([returned.then((value) => ({ value }), (err) => ({ err })), hang]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * sendfile and transferToSync write to any descriptor they are given. A number
 * that names one of Node's own (libuv's signal pipe, its epoll and eventfd
 * descriptors) is not garbage a library can refuse: it is a valid descriptor
 * open for writing, and bytes written into it break Node itself. A plain
 * Node process without pagewarm that does fs.writeSync(fd, junk) into
 * libuv's signal pipe dies of SIGSEGV (seen: seed 370745890 sent file bytes
 * to fd 20, a pipe). Such calls are skipped and counted in the summary.
 */
function writesIntoNode(name, args, w) {
  if (name !== 'transferTo' && name !== 'transferToSync') return false;
  const out = args[0];
  if (!Number.isSafeInteger(out) || out < 0 || out > 2 ** 31 - 1) return false;
  if (Object.values(w.fds).includes(out)) return false;
  try {
    fs.fstatSync(out);
    return true;
  } catch {
    return false; // not open: EBADF, which the call must report
  }
}

async function main() {
  const w = await world();
  const { value, options, slot } = arbitraries(w);
  const fallback = COMPARE ? loadFallback() : null;
  // Start the pool (and open /dev/null) before counting descriptors: a cold range.
  // (evict can miss a page still in a per-CPU LRU batch: retry until one warm-up read from disk)
  for (let i = 0, chunks = pw.stats().sendfileChunks; i < 5 && pw.stats().sendfileChunks === chunks; i++) {
    pw.evict(w.fds.read);
    await pw.prepareForRead(w.fds.read);
  }
  const fdList = () => fs.readdirSync('/proc/self/fd').map((fd) => { try { return fd + ' -> ' + fs.readlinkSync('/proc/self/fd/' + fd); } catch { return null; } }).filter(Boolean);
  const fdsBefore = fdList();
  const kinds = {};
  let calls = 0;
  for (const [name, isAsync, kinds_, ok, required] of targets) {
    if (ONLY && !ONLY.includes(name)) continue;
    if (typeof pw[name] !== 'function') continue;
    // Well-typed edgy tuples (cut short at random, so defaults apply), or anything at all.
    const typed = fc.tuple(fc.tuple(...kinds_.map((k) => slot[k])), fc.nat({ max: kinds_.length }))
      .map(([a, n]) => a.slice(0, Math.max(n, required)));
    const random = fc.array(fc.oneof(value, options), { minLength: 0, maxLength: kinds_.length + 1 });
    const args = fc.oneof({ weight: 4, arbitrary: typed }, { weight: 1, arbitrary: random });
    await fc.assert(fc.asyncProperty(args, async (a) => {
      fs.writeSync(log, name + '(' + show(a) + ')\n');
      calls++;
      const ctx = callContext(w);
      let r;
      try {
        const args = await materializeArgs(a, ctx);
        if (writesIntoNode(name, args, w)) {
          kinds[name + ' -> skipped: a descriptor of Node\'s own'] = (kinds[name + ' -> skipped: a descriptor of Node\'s own'] || 0) + 1;
          return;
        }
        r = await callOnce(name, isAsync, args);
      } finally {
        ctx.cleanup();
      }
      if (r.bad) throw new Error(name + ': ' + r.bad);
      if (fallback) {
        const fctx = callContext(w);
        const f = await callOnce(name, isAsync, await materializeArgs(a, fctx), fallback).finally(() => fctx.cleanup());
        if (f.bad) throw new Error(name + ' (fallback): ' + f.bad);
        const [kn, kf] = [outcomeKey(name, r), outcomeKey(name, f)];
        if (kn !== kf) throw new Error(name + ': native gives ' + kn + ' but the fallback gives ' + kf);
      }
      if ('err' in r) {
        const kind = documented(r.err);
        if (!kind) throw new Error(name + ': undocumented error ' + util.inspect(r.err));
        kinds[name + ' -> ' + kind] = (kinds[name + ' -> ' + kind] || 0) + 1;
      } else {
        if (!ok(r.value)) throw new Error(name + ': bad result ' + util.inspect(r.value));
        kinds[name + ' -> ok'] = (kinds[name + ' -> ok'] || 0) + 1;
      }
    }), { numRuns: RUNS, seed: SEED });
  }
  pw.configure({ threads: 4, chunkSize: 8 << 20 });
  // Still healthy: a correct call gives the right answer, and nothing leaked.
  const healthy = await pw.prepareForRead(w.fds.read, 0, 65536);
  for (let i = 0; i < 100 && pw.stats().queued + pw.stats().active + pw.stats().waiting > 0; i++) await new Promise((r) => setTimeout(r, 20));
  pw.closeServeFileCache(); // serveFile keeps recently served files open by design
  await new Promise((r) => setTimeout(r, 100)); // let closes already under way finish
  const fdsAfter = fdList();
  const st = pw.stats();
  await w.done();
  return { calls, kinds, healthy, fdsBefore, fdsAfter, pending: st.queued + st.active + st.waiting };
}
`;

const childMain = String.raw`
main().then((r) => { console.log('\nSUMMARY ' + JSON.stringify(r)); process.exit(0); },
  (e) => { console.error(require('node:util').inspect(e, { depth: 4 })); process.exit(1); });
`;

const workerMain = String.raw`
const { Worker } = require('node:worker_threads');
const w = new Worker(PRELUDE + HARNESS + "main().then((r) => require('node:worker_threads').parentPort.postMessage({ r }), (e) => require('node:worker_threads').parentPort.postMessage({ e: require('node:util').inspect(e, { depth: 4 }) }));", { eval: true });
w.once('message', (m) => {
  if (m.e) { console.error(m.e); process.exit(1); }
  console.log('\nSUMMARY ' + JSON.stringify(m.r));
  w.terminate().then(() => process.exit(0));
});
w.once('error', (e) => { console.error(e); process.exit(1); });
`;

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  lastCall: string;
}

type GroupOptions = { worker?: boolean; env?: Record<string, string>; compare?: boolean };

function runGroup(name: string, only: string[] | null, opts: GroupOptions = {}): Promise<Outcome> {
  const log = join(dir, `${name}.log`);
  const sub = join(dir, name);
  fs.mkdirSync(sub, { recursive: true });
  const prelude =
    `const DIST = ${JSON.stringify(dist)}; const DIR = ${JSON.stringify(sub)}; const LOG = ${JSON.stringify(log)}; ` +
    `const SEED = ${seed}; const RUNS = ${RUNS}; const ONLY = ${JSON.stringify(only)}; const COMPARE = ${!!opts.compare};\n`;
  const source = opts.worker
    ? `const PRELUDE = ${JSON.stringify(prelude)}; const HARNESS = ${JSON.stringify(harness)};\n${workerMain}`
    : prelude + harness + childMain;
  if (process.env.PAGEWARM_GARBAGE_DUMP) fs.writeFileSync(join(process.env.PAGEWARM_GARBAGE_DUMP, `${name}.js`), source);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', source], {
      cwd: root, // fast-check resolves from the package
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 90_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code, signal) => {
      const lines = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trimEnd().split('\n') : [];
      resolve({ code, signal, stdout, stderr, lastCall: lines[lines.length - 1] ?? '(none)' });
    });
  });
}

const groups: Array<[string, string[] | null, GroupOptions?]> = [
  ['warm', ['prepareForRead', 'prepareForReadSync', 'warmFile']],
  ['residency', ['residency', 'residencySync', 'evict', 'advise', 'configure', 'stats', 'capabilities']],
  ['sends', ['transferTo', 'transferToSync', 'sendFile', 'sendFileResponse', 'serveFile']],
  ['all-in-a-worker', null, { worker: true }],
  ['all-on-the-fallback', null, { env: { PAGEWARM_FORCE_FALLBACK: '1' } }],
  ['native-and-fallback-agree', ['prepareForRead', 'prepareForReadSync', 'warmFile', 'residency', 'residencySync', 'evict', 'advise', 'configure'], { compare: true }],
];

t.comment(`seed ${seed}, ${RUNS} runs per function`);
// eslint-disable-next-line @typescript-eslint/no-var-requires
const exported = require(dist) as Record<string, unknown>;
for (const [name, only, opts] of groups) {
  const present = only === null || only.some((f) => typeof exported[f] === 'function');
  t.test(`garbage arguments: ${name}`, { skip: !present && `none of ${only!.join(', ')} is exported yet` }, async (t) => {
    const r = await runGroup(name, only, opts);
    t.equal(r.signal, null, `no crash and no hang (signal ${r.signal}); last call: ${r.lastCall}`);
    t.equal(r.code, 0, r.code === 0 ? 'every call gave a documented outcome' : `failed at: ${r.lastCall}\n${r.stderr.slice(-4000)}`);
    if (r.code !== 0 || r.signal) return;
    // Garbage may well send file bytes to the child's own stdout (fd 1): the
    // summary is the last line that starts with its marker.
    const summary = JSON.parse(r.stdout.split('\n').filter((l) => l.startsWith('SUMMARY ')).pop()!.slice('SUMMARY '.length));
    t.equal(summary.healthy, 65536, 'a correct call still gives the right answer afterwards');
    t.same(summary.fdsAfter.filter((x: string) => !summary.fdsBefore.includes(x)), [], 'no descriptor leaked (one Node closed of its own is not a leak)');
    t.equal(summary.pending, 0, 'no job left in the pool');
    t.comment(`${summary.calls} calls; outcomes: ${JSON.stringify(summary.kinds)}`);
  });
}
