// The package as users get it: `npm pack` (prepack makes the prebuilds) from
// a scratch copy of this tree, installed into scratch projects with no
// compiler on PATH, then used from CommonJS, ES modules, strict TypeScript
// and the `pagewarm` command. Proves the shipped prebuild itself is what
// loads (no build/ in the installed copy; /proc/self/maps names the file),
// and that an install with neither a prebuild nor a compiler still succeeds
// and runs on the portable fallback.
//
// The installed copy is then run by every Node version CI tests (this one,
// and those .ci/run fetched: PAGEWARM_TEST_NODES), each doing what a user
// first does: warm a cold file, send it zero-copy, serve it over HTTP, and
// terminate a worker with a warm-up and a send in flight.
//
// Slow: a cold prebuild cache means compiling for x64 and arm64 first.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { join, dirname } from 'node:path';
import { scratchDir, warmedWhole } from './helpers';

t.setTimeout(300_000);

const root = join(__dirname, '..');
const work = scratchDir('pagewarm-pack-');
const arch = process.arch;

if (process.env.PAGEWARM_FORCE_FALLBACK === '1') {
  // The package is the same in both modes, and this test checks both modes
  // of the installed copy itself (native prebuild, and forced fallback).
  t.comment('PAGEWARM_FORCE_FALLBACK=1: this test covers both modes itself; the fallback pass does not repeat it');
  t.pass('covered by the default pass');
} else if (process.env.PAGEWARM_VERSION_PASS === '1') {
  // .ci/run's passes under the other Node versions: the first pass already
  // ran the tarball under each of them (PAGEWARM_TEST_NODES).
  t.comment(`PAGEWARM_VERSION_PASS=1: the default pass ran the packed tarball under ${process.version} already`);
  t.pass('covered by the default pass');
} else {
  run();
}

/** npm's own CLI script, to run it with a PATH that has no npm on it. */
function npmCli(): string {
  const candidates = [
    process.env.npm_execpath,
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
  ];
  const found = candidates.find((c) => c && c.endsWith('npm-cli.js') && fs.existsSync(c));
  if (!found) throw new Error('cannot find npm-cli.js');
  return found;
}

/**
 * The Node binaries to run the installed package with: this one, then each
 * of PAGEWARM_TEST_NODES (colon-separated paths, set by .ci/run).
 */
function testedNodes(): string[] {
  const extra = (process.env.PAGEWARM_TEST_NODES ?? '').split(':').filter((p) => p !== '');
  return [...new Set([process.execPath, ...extra.map((p) => fs.realpathSync(p))])];
}

/** A PATH with node (`execPath`, this one by default) and a shell, and no compiler, make or python. */
function bareBin(execPath = process.execPath, name = 'bin'): string {
  const bin = join(work, name);
  fs.mkdirSync(bin);
  fs.symlinkSync(execPath, join(bin, 'node'));
  fs.symlinkSync('/bin/sh', join(bin, 'sh'));
  return bin;
}

function sh(command: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): SpawnSyncReturns<string> {
  const r = spawnSync(command, args, { cwd: opts.cwd, env: opts.env, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

function check(t: Test, r: SpawnSyncReturns<string>, what: string): boolean {
  const ok = r.status === 0;
  t.ok(ok, what, ok ? {} : { status: r.status, stdout: r.stdout.slice(-4000), stderr: r.stderr.slice(-4000) });
  return ok;
}

/** The files the CommonJS, ESM and TypeScript users write. */
function writeUsers(app: string): void {
  // CommonJS: warm this very file, report what loaded it.
  fs.writeFileSync(
    join(app, 'use.cjs'),
    `const pw = require('pagewarm');
const fs = require('node:fs');
const { Worker } = require('node:worker_threads');
const loaded = () => [...new Set(fs.readFileSync('/proc/self/maps', 'utf8').split('\\n')
  .map((l) => l.split(/\\s+/).slice(5).join(' ')).filter((p) => p.endsWith('.node')))];
(async () => {
  const fd = fs.openSync(__filename, 'r');
  const size = fs.fstatSync(fd).size;
  const warmed = await pw.prepareForRead(fd);
  const sync = pw.prepareForReadSync(fd, 1, 5);
  const res = pw.residencySync(fd);
  let dirError;
  try { await pw.prepareForRead(fs.openSync(__dirname, 'r')); } catch (e) { dirError = { code: e.code, syscall: e.syscall, message: e.message }; }
  let typeError;
  try { pw.prepareForReadSync('3'); } catch (e) { typeError = { name: e.name, code: e.code }; }
  // The C++ exception path of the binary itself (node-addon-api throws for a non-number).
  let nativeThrow;
  try { require('node-gyp-build')(require('node:path').dirname(require.resolve('pagewarm/package.json'))).warm('x', 0, 0, 1); }
  catch (e) { nativeThrow = { name: e.name, message: e.message }; }
  const worker = await new Promise((resolve, reject) => {
    const w = new Worker(\`const pw = require('pagewarm'); const fs = require('node:fs');
      const fd = fs.openSync(\${JSON.stringify(__filename)}, 'r');
      pw.prepareForRead(fd).then((n) => require('node:worker_threads').parentPort.postMessage({ n, native: pw.capabilities().native }));\`, { eval: true });
    w.once('message', (m) => { w.terminate(); resolve(m); });
    w.once('error', reject);
  });
  console.log(JSON.stringify({ caps: pw.capabilities(), size, warmed, sync, res, dirError, typeError, nativeThrow, worker, loaded: loaded(),
    exports: Object.keys(pw).sort() }));
})();
`,
  );
  // ES modules: named and default imports are the same single instance.
  fs.writeFileSync(
    join(app, 'use.mjs'),
    `import pw, { prepareForRead, residency, capabilities, AbortError } from 'pagewarm';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
const fh = await open(fileURLToPath(import.meta.url), 'r');
const warmed = await prepareForRead(fh);
const res = await residency(fh);
let aborted;
try { await prepareForRead(fh, 0, undefined, { signal: AbortSignal.abort() }); } catch (e) { aborted = e instanceof AbortError; }
console.log(JSON.stringify({ same: pw.prepareForRead === prepareForRead, native: capabilities().native, warmed,
  size: (await fh.stat()).size, source: res.source, aborted }));
await fh.close();
`,
  );
  // TypeScript, both module kinds, strict, against the shipped .d.ts files.
  const body = `
const fd: number = 0;
const warmed: Promise<number> = prepareForRead(fd, 0, 4096, { signal: AbortSignal.timeout(1000) });
const res: Promise<Residency> = residency(fd);
const sync: number = prepareForReadSync(fd);
const caps: Capabilities = capabilities();
const native: boolean = caps.native;
const st: Stats = stats();
const threads: number = st.threads;
advise(fd, 0, 0, 'willneed');
configure({ threads: 2, chunkSize: 1 << 20 });
const file: Promise<number> = warmFile('x', { offset: 1, length: 2 });
// @ts-expect-error offsets are numbers
prepareForRead(fd, '0');
// @ts-expect-error not a kind of advice
advise(fd, 0, 0, 'forget');
void [warmed, res, sync, native, threads, file];
`;
  fs.writeFileSync(
    join(app, 'use-esm.mts'),
    `import pw, { prepareForRead, prepareForReadSync, residency, capabilities, stats, advise, configure, warmFile,
  type Residency, type Capabilities, type Stats } from 'pagewarm';
const viaDefault: typeof prepareForRead = pw.prepareForRead;
void viaDefault;
${body}`,
  );
  fs.writeFileSync(
    join(app, 'use-cjs.cts'),
    `import pw = require('pagewarm');
const { prepareForRead, prepareForReadSync, residency, capabilities, stats, advise, configure, warmFile } = pw;
type Residency = pw.Residency;
type Capabilities = pw.Capabilities;
type Stats = pw.Stats;
${body}`,
  );
  fs.writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          noEmit: true,
          skipLibCheck: false, // the shipped .d.ts files are checked too
          types: ['node'],
          typeRoots: [join(root, 'node_modules', '@types')],
        },
        files: ['use-esm.mts', 'use-cjs.cts'],
      },
      null,
      2,
    ),
  );
}

/**
 * accept.cjs: what a user first does, on whichever Node runs it, reported as
 * JSON. A cold file is made cold by evicting and checking, up to 8 times
 * (`cold: false` is a precondition failure, not a product one).
 */
function writeAcceptance(app: string): void {
  fs.writeFileSync(
    join(app, 'accept.cjs'),
    String.raw`const pw = require('pagewarm');
const fs = require('node:fs'), net = require('node:net'), http = require('node:http'), crypto = require('node:crypto');
const { Worker } = require('node:worker_threads');
const warnings = [];
process.on('warning', (w) => warnings.push(w.code || w.name));
// A file of its own per Node version: pages a previous run sent may still be held by its sockets.
const file = require('node:path').join(__dirname, 'data-' + process.version + '.bin');
if (!fs.existsSync(file)) {
  const fd = fs.openSync(file + '.tmp', 'w');
  fs.writeSync(fd, crypto.randomBytes(8 << 20));
  fs.fsyncSync(fd); // clean pages: eviction drops only those
  fs.closeSync(fd);
  fs.renameSync(file + '.tmp', file);
}
const size = fs.statSync(file).size;
const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
const want = sha(fs.readFileSync(file));
// Open descriptors as "number>target": a leak is one present after that was not before.
const fds = () => new Set(fs.readdirSync('/proc/self/fd').map((n) => { try { return n + '>' + fs.readlinkSync('/proc/self/fd/' + n); } catch { return ''; } }));
const added = (before, after) => [...after].filter((x) => x && !before.has(x));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const listen = (server) => new Promise((r) => server.listen(0, '127.0.0.1', () => r(server.address().port)));

async function coldWarm() {
  const fd = fs.openSync(file, 'r');
  try {
    let attempts = 0;
    for (let backoff = 5; attempts < 8; attempts++, backoff *= 2) {
      pw.evict(fd);
      if (pw.residencySync(fd).residentPages === 0) break;
      await sleep(backoff);
    }
    if (attempts === 8) return { cold: false };
    const warmed = await pw.prepareForRead(fd);
    const r = pw.residencySync(fd);
    return { cold: true, warmed, resident: r.residentPages + r.evictedPages, pages: r.pages }; // evicted: reclaimed since, by the VM
  } finally { fs.closeSync(fd); }
}

async function send() {
  const got = [];
  let result;
  const server = net.createServer((s) => { pw.sendFile(s, file).then((r) => { result = r; s.end(); }, (e) => { result = { error: e.code }; s.destroy(); }); });
  const port = await listen(server);
  await new Promise((resolve, reject) => net.connect(port, '127.0.0.1').on('data', (d) => got.push(d)).on('end', resolve).on('error', reject));
  await new Promise((r) => server.close(r));
  return { ...result, same: sha(Buffer.concat(got)) === want };
}

async function serve() {
  let result;
  const server = http.createServer((req, res) => pw.serveFile(req, res, file).then((r) => { result = r; }));
  const port = await listen(server);
  const body = await fetch('http://127.0.0.1:' + port + '/').then(async (r) => ({ status: r.status, buf: Buffer.from(await r.arrayBuffer()) }));
  while (!result) await sleep(5);
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  return { status: body.status, same: sha(body.buf) === want, bytes: result.bytes, zeroCopy: result.zeroCopy };
}

async function workerTeardown() {
  const before = fds();
  const held = [];
  const server = net.createServer((s) => { s.pause(); held.push(s); }); // never reads: the send parks
  const port = await listen(server);
  const w = new Worker(` + '`' + String.raw`const pw = require('pagewarm'); const fs = require('node:fs'); const net = require('node:net');
    const { parentPort, workerData } = require('node:worker_threads');
    const fd = fs.openSync(workerData.file, 'r'); pw.evict(fd);
    const c = net.connect(workerData.port, '127.0.0.1', () => {
      pw.sendFile(c, workerData.file).catch(() => {});
      pw.prepareForRead(fd).catch(() => {});
      setTimeout(() => parentPort.postMessage('in flight'), 20);
    });` + '`' + String.raw`, { eval: true, workerData: { file, port } });
  await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  const exitCode = await w.terminate();
  held.forEach((s) => s.destroy());
  await new Promise((r) => server.close(r));
  let leaked = added(before, fds());
  for (let i = 0; i < 50 && leaked.length > 0; i++) { await sleep(20); leaked = added(before, fds()); }
  const fd = fs.openSync(file, 'r');
  const again = await pw.prepareForRead(fd).then(() => true, () => false);
  fs.closeSync(fd);
  return { exitCode, leakedFds: leaked, usableAfter: again };
}

(async () => {
  const out = { node: process.version, native: pw.capabilities().native, warm: await coldWarm(), send: await send(), serve: await serve(),
    worker: await workerTeardown(), warnings };
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`,
  );
}

function run(): void {
  const copy = join(work, 'src-copy');
  const packs = join(work, 'packs');
  const bin = bareBin();
  const npm = npmCli();
  const bareEnv = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { HOME: process.env.HOME, PATH: bin, npm_config_update_notifier: 'false', ...extra };
    for (const key of ['npm_config_cache', 'npm_config_registry', 'npm_config_cafile', 'NODE_EXTRA_CA_CERTS', 'TMPDIR']) {
      if (process.env[key]) env[key] = process.env[key];
    }
    return env;
  };
  let tarball = '';
  /** The scratch project the tarball was installed into, once it was. */
  let installed = '';

  t.test('npm pack makes a tarball with both prebuilds', async (t) => {
    // A copy of this tree, so packing never writes prebuilds/ or dist/ here.
    fs.mkdirSync(copy);
    for (const entry of ['package.json', 'binding.gyp', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'src', 'lib', 'scripts', 'bin']) {
      if (fs.existsSync(join(root, entry))) fs.cpSync(join(root, entry), join(copy, entry), { recursive: true });
    }
    fs.symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'), 'dir');
    fs.mkdirSync(packs);
    const started = Date.now();
    const r = sh(process.execPath, [npm, 'pack', '--json', '--pack-destination', packs], { cwd: copy, env: process.env });
    if (!check(t, r, 'npm pack (prepack: prebuilds; prepare: TypeScript)')) return;
    t.comment(`npm pack took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const info = JSON.parse(r.stdout)[0] as { filename: string; size: number; unpackedSize: number; files: Array<{ path: string; size: number }> };
    tarball = join(packs, info.filename);
    const files = new Map(info.files.map((f) => [f.path, f.size]));
    for (const a of ['x64', 'arm64']) {
      const p = `prebuilds/linux-${a}/pagewarm.glibc.node`;
      t.ok(files.has(p), `ships ${p}`);
      t.comment(`${p}: ${files.get(p)} bytes`);
    }
    const described = spawnSync('file', ['-b', join(copy, 'prebuilds/linux-arm64/pagewarm.glibc.node')], { encoding: 'utf8' }).stdout;
    t.match(described, /ELF 64-bit LSB shared object, ARM aarch64.*stripped/, `the arm64 prebuild: ${described.trim()}`);
    t.notMatch(described, /not stripped/);
    for (const p of [
      'package.json',
      'binding.gyp',
      'src/addon.cc',
      'dist/cjs/index.js',
      'dist/cjs/index.d.ts',
      'dist/esm/index.mjs',
      'dist/esm/index.d.mts',
      'dist/cjs/cli/main.js',
      'bin/pagewarm.js',
      'scripts/install-failed.js',
    ]) {
      t.ok(files.has(p), `ships ${p}`);
    }
    for (const p of info.files.map((f) => f.path)) {
      if (/^(build|test|node_modules|lib)\//.test(p) || p === 'scripts/prebuild.js') t.fail(`does not ship ${p}`);
    }
    t.comment(`tarball: ${info.filename}, ${info.size} bytes packed, ${info.unpackedSize} unpacked, ${info.files.length} files`);
  });

  t.test('installed with no compiler on PATH, the prebuild loads and works', async (t) => {
    if (!tarball) return t.fail('no tarball');
    const noCompiler = sh('/bin/sh', ['-c', 'for c in cc gcc g++ c++ clang make python3 python; do command -v $c && exit 1; done; exit 0'], {
      cwd: work,
      env: bareEnv(),
    });
    t.equal(noCompiler.status, 0, `no compiler, make or python on PATH=${bin} (${noCompiler.stdout.trim()})`);
    const app = join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const install = sh(process.execPath, [npm, 'install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', tarball], {
      cwd: app,
      env: bareEnv(),
    });
    if (!check(t, install, 'npm install of the tarball')) return;
    t.notMatch(install.stdout + install.stderr, /gyp info|gyp ERR|not available on this machine/, 'no source build was tried, no fallback warning');
    const pkg = join(app, 'node_modules', 'pagewarm');
    t.notOk(fs.existsSync(join(pkg, 'build')), 'no build/ in the installed copy: only the prebuild can load');
    const prebuild = join(pkg, 'prebuilds', `linux-${arch}`, 'pagewarm.glibc.node');
    t.ok(fs.existsSync(prebuild), 'the prebuild is installed');

    writeUsers(app);
    installed = app;
    const cjs = sh(process.execPath, ['use.cjs'], { cwd: app, env: bareEnv() });
    if (check(t, cjs, 'CommonJS')) {
      const r = JSON.parse(cjs.stdout);
      t.same(r.loaded, [prebuild], 'the one native file loaded is the shipped prebuild');
      t.match(r.caps, { native: true, zeroCopySend: true }, 'native');
      t.notOk('fallbackReason' in r.caps);
      t.equal(r.warmed, r.size, 'prepareForRead warmed the whole file');
      t.equal(r.sync, 5);
      t.not(r.res.source, 'unknown', `residency from ${r.res.source}`);
      t.equal(r.res.residentPages! + (r.res.evictedPages ?? 0), r.res.pages, 'resident (resident, or reclaimed since)');
      t.same(r.dirError, { code: 'EISDIR', syscall: 'sendfile', message: 'EISDIR: illegal operation on a directory, sendfile' });
      t.same(r.typeError, { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
      t.same(r.nativeThrow, { name: 'TypeError', message: 'pagewarm: expected a number' }, 'C++ exceptions work in the prebuild');
      t.same(r.worker, { n: r.size, native: true }, 'and in a worker thread');
      t.same(r.exports, Object.keys(require('../lib/index')).sort(), 'every export of lib/index.ts');
    }
    const esm = sh(process.execPath, ['use.mjs'], { cwd: app, env: bareEnv() });
    if (check(t, esm, 'ES module')) {
      const r = JSON.parse(esm.stdout);
      t.match(r, { same: true, native: true, aborted: true }, 'one instance behind named and default imports');
      t.equal(r.warmed, r.size);
      t.not(r.source, 'unknown');
    }
    // The subpath export, from the installed copy, without fastify installed there.
    const sub = sh(process.execPath, ['-e', "const c = require('pagewarm/fastify'); import('pagewarm/fastify').then((m) => console.log(typeof c.default, m.default === c.default, m.pagewarmStatic === c.pagewarmStatic))"], { cwd: app, env: bareEnv() });
    if (check(t, sub, 'pagewarm/fastify')) t.equal(sub.stdout.trim(), 'function true true', 'pagewarm/fastify loads as CJS and ESM (one plugin)');
    const tsc = sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json', '--noEmit', '--strict'], {
      cwd: app,
      env: bareEnv(),
    });
    check(t, tsc, 'TypeScript (nodenext, strict, .mts and .cts) type-checks against the shipped types');

    const cli = sh(join(app, 'node_modules', '.bin', 'pagewarm'), ['warm', '--json', join(app, 'use.cjs')], { cwd: app, env: bareEnv() });
    if (check(t, cli, 'the pagewarm command')) {
      const r = JSON.parse(cli.stdout);
      t.match(r, { command: 'warm', capabilities: { native: true }, summary: { files: 1, errors: 0 } });
      // Every page resident when the command reported, or reclaimed since (this VM reclaims idle page cache in the background).
      const judged = r.files[0].residentPages === r.files[0].pages ? undefined : warmedWhole(join(app, 'use.cjs'));
      t.ok(judged === undefined || judged.whole, `warmed: ${r.files[0].residentPages}/${r.files[0].pages} pages${judged ? `; now ${judged.counts}` : ''}`);
    }
    const fallback = sh(process.execPath, ['use.cjs'], { cwd: app, env: bareEnv({ PAGEWARM_FORCE_FALLBACK: '1' }) });
    if (check(t, fallback, 'CommonJS with PAGEWARM_FORCE_FALLBACK=1')) {
      const r = JSON.parse(fallback.stdout);
      t.match(r.caps, { native: false, fallbackReason: 'PAGEWARM_FORCE_FALLBACK=1' });
      t.equal(r.warmed, r.size);
      t.equal(r.res.source, 'unknown');
      t.same(r.dirError, { code: 'EISDIR', syscall: 'sendfile', message: 'EISDIR: illegal operation on a directory, sendfile' }, 'same error');
    }
  });

  t.test('every tested Node version: warm a cold file, send it, serve it, terminate a worker mid-flight', async (t) => {
    if (!installed) return t.fail('not installed');
    writeAcceptance(installed);
    const nodes = testedNodes();
    t.comment(`Node binaries: ${nodes.join(', ')}`);
    for (const [i, node] of nodes.entries()) {
      const version = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
      const bin = i === 0 ? join(work, 'bin') : bareBin(node, `bin-${i}`);
      const r = sh(join(bin, 'node'), ['accept.cjs'], { cwd: installed, env: { ...bareEnv(), PATH: bin } });
      if (!check(t, r, `${version}: accept.cjs ran`)) continue;
      const a = JSON.parse(r.stdout);
      const size = 8 << 20;
      t.equal(a.node, version, `${version}: run by that Node`);
      t.equal(a.native, true, `${version}: the prebuild loaded`);
      if (!a.warm.cold) t.fail(`precondition: ${version}: the kernel kept the file in the page cache through 8 evictions (not a pagewarm failure)`);
      else t.same(a.warm, { cold: true, warmed: size, resident: a.warm.pages, pages: a.warm.pages }, `${version}: a cold file warmed, every page resident`);
      t.same(a.send, { bytes: size, zeroCopy: true, same: true }, `${version}: sendFile, zero-copy, every byte`);
      t.same(a.serve, { status: 200, same: true, bytes: size, zeroCopy: true }, `${version}: serveFile, zero-copy, every byte`);
      t.same(a.worker, { exitCode: 1, leakedFds: [], usableAfter: true }, `${version}: a worker terminated with a send and a warm-up in flight leaks nothing`);
      t.same(a.warnings, [], `${version}: no warning (none of the internals checks fell back)`);
    }
  });

  t.test('no prebuild and no compiler: the install still succeeds, and the fallback serves', async (t) => {
    if (!tarball) return t.fail('no tarball');
    // The same tarball without prebuilds/ (as on a platform with none).
    const unpacked = join(work, 'unpacked');
    fs.mkdirSync(unpacked);
    t.equal(spawnSync('tar', ['xzf', tarball, '-C', unpacked]).status, 0, 'unpacked');
    fs.rmSync(join(unpacked, 'package', 'prebuilds'), { recursive: true });
    const bare = join(packs, 'pagewarm-no-prebuilds.tgz');
    t.equal(spawnSync('tar', ['czf', bare, '-C', unpacked, 'package']).status, 0, 'repacked');
    const app = join(work, 'app-bare');
    fs.mkdirSync(app);
    fs.writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app-bare', version: '1.0.0', private: true }));
    const install = sh(process.execPath, [npm, 'install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', bare], {
      cwd: app,
      env: bareEnv(),
    });
    if (!check(t, install, 'npm install succeeds although the addon cannot be built')) return;
    t.match(install.stdout + install.stderr, /pagewarm: the native addon is not available on this machine/, 'and says why');
    writeUsers(app);
    const cjs = sh(process.execPath, ['use.cjs'], { cwd: app, env: bareEnv() });
    if (check(t, cjs, 'CommonJS')) {
      const r = JSON.parse(cjs.stdout);
      t.same(r.loaded, [], 'no native file loaded');
      t.match(r.caps, { native: false, fallbackReason: /native addon did not load/ });
      t.match(cjs.stderr, /\(node:\d+\) \[PAGEWARM_FALLBACK\] Warning: pagewarm: native addon did not load/, 'a process warning says so');
      t.equal(r.warmed, r.size, 'warming works');
      t.equal(r.res.source, 'unknown');
      t.same(r.worker, { n: r.size, native: false }, 'in a worker too');
    }
    const esm = sh(process.execPath, ['use.mjs'], { cwd: app, env: bareEnv() });
    if (check(t, esm, 'ES module')) t.match(JSON.parse(esm.stdout), { same: true, native: false, aborted: true });
  });
}
