// Many files by path (lib/files): warmFiles, evictFiles, filesResidency and
// eachFile on the batch path, natively and in the portable fallback: cold
// files warmed whole, failures reported per path while the rest go on
// (missing, vanished mid-way, directories, FIFOs, symbolic link loops,
// unreadable and other users' files), hard links counted once, maxSize,
// aborts without a leaked descriptor, bad arguments, and a worker
// terminated with batches in flight.
import t from 'tap';
import * as fs from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { capabilities, configure, eachFile, evictFiles, filesResidency, warmFiles, type FileReport } from '../lib/index';
import { fdList, fdChanges, makeCold, makeFile, scratchDir, warmedWhole } from './helpers';

t.setTimeout(300_000);
const native = capabilities().native;
const asRoot = process.getuid?.() === 0;
const dir = scratchDir('pagewarm-files-');
const KiB = 1024;

/** n files of 1 B .. 64 KiB under `sub`, and an empty one: their paths. */
function tree(sub: string, n: number): string[] {
  const d = join(dir, sub);
  fs.mkdirSync(d, { recursive: true });
  const paths: string[] = [];
  for (let i = 0; i < n; i++) paths.push(makeFile(join(d, `f${i}`), 1 + ((i * 7919) % (64 * KiB))));
  fs.writeFileSync(join(d, 'empty'), '');
  paths.push(join(d, 'empty'));
  return paths;
}
const sizeOf = (paths: string[]): number => paths.reduce((s, p) => s + fs.statSync(p).size, 0);

async function coldAll(t: Parameters<typeof makeCold>[0], paths: string[]): Promise<boolean> {
  for (const p of paths) if (fs.statSync(p).size > 0 && !(await makeCold(t, p))) return false;
  return true;
}

t.test('warmFiles reads every cold file in whole, and says how much it read', async (t) => {
  const paths = tree('warm', 40);
  if (!(await coldAll(t, paths))) return;
  const r = await warmFiles(paths);
  const partial = paths.filter((p) => !warmedWhole(p).whole).map((p) => `${p}: ${warmedWhole(p).counts}`);
  t.same(partial, [], 'every file resident in whole');
  t.equal(r.files, paths.length);
  t.equal(r.bytes, sizeOf(paths));
  t.equal(r.warmedBytes, r.bytes, 'all of it was cold (or, in the fallback, unknown: counted whole)');
  t.same(r.failed, []);
  t.equal(r.skipped, 0);

  const again = await warmFiles(paths);
  t.equal(again.bytes, r.bytes);
  if (native) t.ok(again.warmedBytes < r.bytes / 4, `hot the second time: ${again.warmedBytes} read of ${again.bytes}`);
});

t.test('paths may be an array, a generator or an async iterable; eachFile keeps their order', async (t) => {
  const paths = tree('iter', 600); // several batches
  const fromGen = await filesResidency((function* () { yield* paths; })());
  const fromAsync = await filesResidency((async function* () { for (const p of paths) yield p; })());
  t.equal(fromGen.files, paths.length);
  t.equal(fromAsync.files, paths.length);
  t.equal(fromGen.bytes, sizeOf(paths));
  const order: string[] = [];
  for await (const r of eachFile('residency', paths)) order.push(r.path);
  t.same(order, paths, 'one report per path, in order');
  // Breaking out early cancels what is in flight and leaks nothing (the
  // first warm-up of the process opened /dev/null, kept for good).
  await warmFiles(paths.slice(0, 1));
  const before = fdList();
  let n = 0;
  for await (const r of eachFile('warm', paths)) {
    if (r.error) t.fail(String(r.error));
    if (++n === 20) break;
  }
  t.equal(n, 20);
  t.same(fdList(), before, 'no descriptor left open after a break');
});

t.test('failures are reported per path and the rest go on', async (t) => {
  const d = join(dir, 'bad');
  fs.mkdirSync(d);
  const good = makeFile(join(d, 'good'), 10_000);
  execFileSync('mkfifo', [join(d, 'fifo')]);
  fs.symlinkSync('loop', join(d, 'loop')); // a link to itself
  fs.symlinkSync('good', join(d, 'link'));
  const paths = [join(d, 'missing'), d, join(d, 'fifo'), join(d, 'loop'), good, 'nul\0byte'];
  const r = await warmFiles(paths);
  t.equal(r.files, 1, 'the good file was warmed');
  t.equal(r.bytes, 10_000);
  const codes = Object.fromEntries(r.failed.map((f) => [f.path, (f.error as NodeJS.ErrnoException).code]));
  t.same(codes, {
    [join(d, 'missing')]: 'ENOENT', [d]: 'EISDIR', [join(d, 'fifo')]: 'ESPIPE', [join(d, 'loop')]: 'ELOOP', 'nul\0byte': 'ENOENT',
  });
  const missing = r.failed[0]!.error as NodeJS.ErrnoException;
  t.equal(missing.syscall, 'open');
  t.equal(missing.path, join(d, 'missing'));
  t.equal(missing.errno, -2);
  t.match(missing.message, /^ENOENT: no such file or directory, open '.*missing'$/);

  // A final symbolic link is followed unless followSymlinks is false.
  t.equal((await warmFiles([join(d, 'link')])).files, 1);
  const nofollow = await warmFiles([join(d, 'link')], { followSymlinks: false });
  t.equal((nofollow.failed[0]?.error as NodeJS.ErrnoException | undefined)?.code, 'ELOOP');
});

t.test('a file that vanishes between the listing and its turn is reported, the others done', async (t) => {
  const paths = tree('vanish', 50);
  const victim = paths[30]!;
  async function* listing(): AsyncGenerator<string> {
    for (const p of paths) {
      if (p === paths[29]) fs.rmSync(victim);
      yield p;
    }
  }
  const r = await warmFiles(listing());
  t.equal(r.failed.length, 1);
  t.equal(r.failed[0]!.path, victim);
  t.equal((r.failed[0]!.error as NodeJS.ErrnoException).code, 'ENOENT');
  t.equal(r.files, paths.length - 1);
});

t.test('hard links (and a path given twice) are counted once', async (t) => {
  const d = join(dir, 'links');
  fs.mkdirSync(d);
  const a = makeFile(join(d, 'a'), 20_000);
  fs.linkSync(a, join(d, 'b'));
  fs.linkSync(a, join(d, 'c'));
  const reports: FileReport[] = [];
  for await (const r of eachFile('residency', [a, join(d, 'b'), join(d, 'c'), a])) reports.push(r);
  t.same(reports.map((r) => r.duplicate), [false, true, true, true]);
  t.equal(new Set(reports.map((r) => r.id)).size, 1, 'one device and inode');
  const r = await warmFiles([a, join(d, 'b'), join(d, 'c')]);
  t.equal(r.files, 1);
  t.equal(r.bytes, 20_000);
});

t.test('maxSize, offset and length', async (t) => {
  const d = join(dir, 'sizes');
  fs.mkdirSync(d);
  const small = makeFile(join(d, 'small'), 4096);
  const large = makeFile(join(d, 'large'), 1 << 20);
  const r = await warmFiles([small, large], { maxSize: 4096 });
  t.equal(r.files, 1);
  t.equal(r.skipped, 1);
  t.equal(r.bytes, 4096);
  const ranged = await filesResidency([small, large], { offset: 1000, length: 5000 });
  t.equal(ranged.bytes, 3096 + 5000, 'each range clamped to its file');
});

t.test('evictFiles drops what warmFiles brought in', async (t) => {
  const paths = tree('evict', 20);
  await warmFiles(paths);
  const r = await evictFiles(paths);
  t.equal(r.files, paths.length);
  t.equal(r.bytes, sizeOf(paths));
  const after = await filesResidency(paths);
  if (native) {
    t.equal(r.residentBytes, 0, 'nothing resident after');
    t.equal(after.residentBytes, 0);
    t.ok(r.evictedBytes > 0 && r.evictedBytes <= r.bytes, `evicted ${r.evictedBytes} of ${r.bytes}`);
  } else {
    t.equal(r.evictedBytes, 0, 'the fallback cannot evict, and says nothing left');
    t.equal(after.unknown, paths.length, 'nor can it tell residency');
  }
});

t.test('an abort stops the work: AbortError, no descriptor left open', async (t) => {
  const paths = tree('abort', 2000);
  const ac = new AbortController();
  ac.abort();
  await t.rejects(warmFiles(paths, { signal: ac.signal }), { name: 'AbortError' }, 'aborted before it starts');
  const before = fdList();
  const mid = new AbortController();
  let calls = 0;
  await t.rejects(
    warmFiles(paths, {
      signal: mid.signal,
      progressIntervalMs: 0,
      onProgress: () => {
        if (++calls === 1) mid.abort(new Error('enough'));
      },
    }),
    { name: 'AbortError', code: 'ABORT_ERR' },
  );
  t.equal(calls, 1, 'no progress after the abort');
  t.same(fdList(), before, 'no descriptor left open');
});

t.test('bad arguments are refused before any work', async (t) => {
  await t.rejects(warmFiles('/etc/passwd' as never), { code: 'ERR_INVALID_ARG_TYPE' }, 'a string is not a list');
  await t.rejects(warmFiles(null as never), { code: 'ERR_INVALID_ARG_TYPE' });
  await t.rejects(warmFiles([1] as never), { code: 'ERR_INVALID_ARG_TYPE', message: /paths\[0\]/ });
  await t.rejects(warmFiles([], { maxSize: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  await t.rejects(warmFiles([], { offset: -5 }), { code: 'ERR_OUT_OF_RANGE' });
  await t.rejects(warmFiles([], { onProgress: 5 as never }), { code: 'ERR_INVALID_ARG_TYPE' });
  await t.rejects(warmFiles([], { followSymlinks: 'yes' as never }), { code: 'ERR_INVALID_ARG_TYPE' });
  await t.rejects(eachFile('touch' as never, []).next(), { code: 'ERR_INVALID_ARG_VALUE' });
  t.same(await warmFiles([]), { files: 0, bytes: 0, warmedBytes: 0, failed: [], skipped: 0 }, 'an empty list');
});

t.test('a large file is warmed a chunk a slice, others interleaved', async (t) => {
  configure({ chunkSize: 1 << 20 });
  t.teardown(() => configure({ chunkSize: 8 << 20 }));
  const big = makeFile(join(dir, 'big'), 24 << 20);
  const small = tree('beside-big', 10);
  if (!(await makeCold(t, big))) return;
  const r = await warmFiles([big, ...small]);
  t.equal(r.files, 1 + small.length);
  t.ok(warmedWhole(big).whole, warmedWhole(big).counts);
});

t.test('other users: unreadable files fail with EACCES; files the kernel will not describe are warmed whole', { skip: asRoot ? false : 'needs root to run as nobody' }, async (t) => {
  const d = join(dir, 'users');
  fs.mkdirSync(d, { mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  const secret = makeFile(join(d, 'secret'), 8192);
  fs.chmodSync(secret, 0o600);
  const shared = makeFile(join(d, 'shared'), 300_000);
  fs.chmodSync(shared, 0o644);
  if (!(await makeCold(t, shared))) return;
  const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }));
  const nogroup = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }));
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const script = `const { warmFiles } = require(${JSON.stringify(join(__dirname, '..', 'lib', 'index.ts'))});
warmFiles(${JSON.stringify([secret, shared])}).then((r) => console.log(JSON.stringify({ ...r, failed: r.failed.map((f) => [f.path, f.error.code]) })));`;
  const env: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' };
  delete env.NODE_OPTIONS;
  const child = spawnSync(process.execPath, [...loader, '-e', script], { encoding: 'utf8', uid: nobody, gid: nogroup, env, cwd: '/' });
  t.equal(child.status, 0, child.stderr);
  const r = JSON.parse(child.stdout);
  t.same(r.failed, [[secret, 'EACCES']]);
  t.equal(r.files, 1);
  t.equal(r.warmedBytes, 300_000, 'residency unknown to nobody: counted whole');
  t.ok(warmedWhole(shared).whole, `warmed all the same: ${warmedWhole(shared).counts}`);
});

t.test('a worker terminated with batches in flight leaks no descriptor', async (t) => {
  const paths = tree('worker', 3000);
  const before = fdList();
  const script = `const { parentPort, workerData } = require('node:worker_threads');
require(${JSON.stringify(join(__dirname, '..', 'dist', 'cjs', 'index.js'))}).warmFiles(workerData, { progressIntervalMs: 0, onProgress: () => parentPort.postMessage('going') });`;
  const w = new Worker(script, { eval: true, workerData: paths });
  await new Promise<void>((resolve, reject) => {
    w.once('message', () => resolve());
    w.once('error', reject);
  });
  await w.terminate();
  // The worker's last batches close their files on pagewarm's threads.
  for (let i = 0; i < 100 && fdChanges(before, fdList()) !== 'opened: none; closed: none'; i++) await new Promise((r) => setTimeout(r, 20));
  t.same(fdList(), before, 'every descriptor closed');
});
