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
// runs per function (default 400: about 25 s here); PAGEWARM_GARBAGE_DUMP=<dir>
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
const RUNS = Number(process.env.PAGEWARM_GARBAGE_RUNS ?? 400); // per function

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
};
function materialize(v, depth) {
  if (v instanceof Token) return makeToken[v.name]();
  if (depth < 2 && v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const proto = Object.getPrototypeOf(v);
    if (proto !== null && proto !== Object.prototype) return v;
    const out = Object.create(proto);
    for (const k of Object.keys(v)) out[k] = materialize(v[k], depth + 1);
    return out;
  }
  return v;
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
    read: fs.openSync(file, 'r+'),
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
  const handleOpen = await fs.promises.open(file, 'r');
  const handleClosed = await fs.promises.open(file, 'r');
  await handleClosed.close();
  const done = () => {
    for (const fd of Object.values(fds)) if (fd !== closed) try { fs.closeSync(fd); } catch {}
    socket.destroy();
    drainer.kill();
    return handleOpen.close();
  };
  return { file, fifo, fds, socket, handleOpen, handleClosed, done };
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
  };
  return { value, options, slot };
}

// name, async?, arity, shape check for a success.
const isCount = (v) => Number.isSafeInteger(v) && v >= 0;
const isResidency = (v) => v && typeof v === 'object' && isCount(v.pages) && isCount(v.bytes) &&
  ['cachestat', 'mincore', 'unknown'].includes(v.source);
const isUndefined = (v) => v === undefined;
const isObject = (v) => v !== null && typeof v === 'object';
// name, async?, parameter kinds, shape check for a success.
const targets = [
  ['prepareForRead', true, ['fd', 'pos', 'pos', 'opts'], isCount],
  ['prepareForReadSync', false, ['fd', 'pos', 'pos'], isCount],
  ['warmFile', true, ['path', 'opts'], isCount],
  ['residency', true, ['fd', 'pos', 'pos'], isResidency],
  ['residencySync', false, ['fd', 'pos', 'pos'], isResidency],
  ['evict', false, ['fd', 'pos', 'pos'], isUndefined],
  ['advise', false, ['fd', 'pos', 'pos', 'advice'], isUndefined],
  ['configure', false, ['cfg'], isUndefined],
  ['stats', false, [], isObject],
  ['capabilities', false, [], isObject],
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
  for (const [name, isAsync, kinds_, ok] of targets) {
    if (ONLY && !ONLY.includes(name)) continue;
    if (typeof pw[name] !== 'function') continue;
    // Well-typed edgy tuples (cut short at random, so defaults apply), or anything at all.
    const typed = fc.tuple(fc.tuple(...kinds_.map((k) => slot[k])), fc.nat({ max: kinds_.length }))
      .map(([a, n]) => a.slice(0, Math.max(n, kinds_.length ? 1 : 0)));
    const random = fc.array(fc.oneof(value, options), { minLength: 0, maxLength: kinds_.length + 1 });
    const args = fc.oneof({ weight: 3, arbitrary: typed }, { weight: 2, arbitrary: random });
    await fc.assert(fc.asyncProperty(args, async (a) => {
      fs.writeSync(log, name + '(' + show(a) + ')\n');
      calls++;
      const r = await callOnce(name, isAsync, a.map((v) => materialize(v, 0)));
      if (r.bad) throw new Error(name + ': ' + r.bad);
      if (fallback) {
        const f = await callOnce(name, isAsync, a.map((v) => materialize(v, 0)), fallback);
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
  await new Promise((r) => setTimeout(r, 100)); // let closes already under way finish
  const fdsAfter = fdList();
  const st = pw.stats();
  await w.done();
  return { calls, kinds, healthy, fdsBefore, fdsAfter, pending: st.queued + st.active + st.waiting };
}
`;

const childMain = String.raw`
main().then((r) => { console.log(JSON.stringify(r)); process.exit(0); },
  (e) => { console.error(require('node:util').inspect(e, { depth: 4 })); process.exit(1); });
`;

const workerMain = String.raw`
const { Worker } = require('node:worker_threads');
const w = new Worker(PRELUDE + HARNESS + "main().then((r) => require('node:worker_threads').parentPort.postMessage({ r }), (e) => require('node:worker_threads').parentPort.postMessage({ e: require('node:util').inspect(e, { depth: 4 }) }));", { eval: true });
w.once('message', (m) => {
  if (m.e) { console.error(m.e); process.exit(1); }
  console.log(JSON.stringify(m.r));
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
  ['sends', ['sendfile', 'sendfileSync', 'sendFile', 'sendFileResponse', 'serveFile']],
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
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    t.equal(summary.healthy, 65536, 'a correct call still gives the right answer afterwards');
    t.same(summary.fdsAfter, summary.fdsBefore, 'no descriptor leaked');
    t.equal(summary.pending, 0, 'no job left in the pool');
    t.comment(`${summary.calls} calls; outcomes: ${JSON.stringify(summary.kinds)}`);
  });
}
