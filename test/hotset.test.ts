// Hot sets (lib/files/hotset.ts): snapshot's ranges and identities, the
// file format (compact, versioned, a corrupt or truncated file refused
// whole with nothing read), restore (only unchanged files, only what is not
// resident, budgets, aborts, other users), keepSnapshot's atomic rewrites,
// and the command's snapshot and restore.
import t from 'tap';
import * as fs from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PassThrough } from 'node:stream';
import {
  capabilities, keepSnapshot, loadHotSet, prepareForRead, restore, saveHotSet, snapshot, SnapshotError, warmFiles,
  residencySync, warmFile, type HotSet,
} from '../lib/index';
import { main } from '../lib/cli/main';
import { fdList, makeCold, makeFile, scratchDir, warmedWhole } from './helpers';

t.setTimeout(300_000);
const native = capabilities().native;
const asRoot = process.getuid?.() === 0;
const dir = scratchDir('pagewarm-hotset-');
const MiB = 1 << 20;
const PAGE = capabilities().pageSize;

function coldFraction(path: string): number {
  const out = execFileSync('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'RES', path], { encoding: 'utf8' });
  return Number(out.trim()) / Math.max(1, fs.statSync(path).size);
}

t.test('snapshot: identities, and resident pages page by page', async (t) => {
  const d = join(dir, 'snap');
  fs.mkdirSync(d);
  const hot = makeFile(join(d, 'hot'), 3 * MiB);
  const cold = makeFile(join(d, 'cold'), 2 * MiB);
  const tail = makeFile(join(d, 'tail'), 4 * MiB);
  fs.writeFileSync(join(d, 'empty'), '');
  fs.linkSync(hot, join(d, 'hot-link'));
  if (!(await makeCold(t, cold)) || !(await makeCold(t, tail))) return;
  await warmFiles([hot]);
  const fd = fs.openSync(tail, 'r');
  await prepareForRead(fd, 2 * MiB, 2 * MiB); // the second half only (2 MiB-aligned: whole folios)
  fs.closeSync(fd);
  const set = await snapshot(d);
  t.equal(set.format, 'pagewarm-hotset');
  t.equal(set.version, 1);
  t.equal(set.pageSize, PAGE);
  const byName = Object.fromEntries(set.files.map((f) => [f.path.slice(d.length + 1), f]));
  t.same(Object.keys(byName).sort(), ['cold', 'empty', 'hot', 'tail'], 'every regular file once (the hard link counted with its first path)');
  const st = fs.statSync(hot, { bigint: true });
  t.match(byName.hot, { dev: Number(st.dev), ino: String(st.ino), size: 3 * MiB, mtimeNs: String(st.mtimeNs) });
  if (!native) {
    t.ok(set.files.every((f) => f.source === 'unknown' && f.ranges.length === 0), 'the fallback claims nothing hot');
    return;
  }
  t.same(byName.hot!.ranges, [0, (3 * MiB) / PAGE], 'hot: all of it');
  t.same(byName.cold!.ranges, [], 'cold: none');
  t.same(byName.empty!.ranges, []);
  const [start, count] = byName.tail!.ranges as [number, number];
  t.equal(byName.tail!.ranges.length, 2, 'tail: one run');
  t.ok(start >= (2 * MiB) / PAGE && start + count === (4 * MiB) / PAGE, `tail: the second half (pages ${start}+${count})`);
});

t.test('the format: round trip, compact, and anything else refused with nothing read', async (t) => {
  // 1 GiB of hot pages scattered over 10,000 files: 13 runs of 2 pages each.
  const files = Array.from({ length: 10_000 }, (_, i) => ({
    path: `/srv/data/shard-${Math.floor(i / 100)}/segment-${i}.log`, dev: 2049, ino: String(1_000_000 + i), size: 8 * MiB,
    mtimeNs: String(1_764_817_200_000_000_000n + BigInt(i)), source: 'pages' as const,
    ranges: Array.from({ length: 13 }, (_, k) => [k * 97 + (i % 7), 2]).flat(),
  }));
  const set: HotSet = { format: 'pagewarm-hotset', version: 1, pageSize: 4096, created: new Date().toISOString(), files };
  const file = join(dir, 'big.hotset');
  await saveHotSet(file, set);
  const bytes = fs.statSync(file).size;
  t.ok(bytes < 1 * MiB, `10,000 files, ${(10_000 * 26 * 4096) / MiB} MiB hot: ${bytes} bytes on disk`);
  t.same(await loadHotSet(file), set, 'read back as written');
  t.same(fs.readdirSync(dir).filter((n) => n.includes('.tmp')), [], 'no temporary file left');

  const target = makeFile(join(dir, 'victim'), 1 * MiB);
  if (!(await makeCold(t, target))) return;
  const st = fs.statSync(target, { bigint: true });
  const good = { format: 'pagewarm-hotset', version: 1, pageSize: PAGE, created: 'x',
    files: [{ path: target, dev: Number(st.dev), ino: String(st.ino), size: MiB, mtimeNs: String(st.mtimeNs), source: 'pages', ranges: [0, 256] }] };
  const cases: Array<[string, Buffer]> = [
    ['garbage', Buffer.from('not gzip at all')],
    ['truncated', encodeGood().subarray(0, 40)],
    ['not JSON', gzipSync('{"format": "pagewarm-hotset", ')],
    ['another format', gzipSync(JSON.stringify({ ...good, format: 'vmtouch' }))],
    ['a later version', gzipSync(JSON.stringify({ ...good, version: 2 }))],
    ['ranges past the end', gzipSync(JSON.stringify({ ...good, files: [{ ...good.files[0], ranges: [0, 257] }] }))],
    ['a negative range', gzipSync(JSON.stringify({ ...good, files: [{ ...good.files[0], ranges: [-1, 2] }] }))],
    ['an odd range list', gzipSync(JSON.stringify({ ...good, files: [{ ...good.files[0], ranges: [0] }] }))],
    ['a bad inode', gzipSync(JSON.stringify({ ...good, files: [{ ...good.files[0], ino: '12x' }] }))],
    ['a NUL in a path', gzipSync(JSON.stringify({ ...good, files: [{ ...good.files[0], path: 'a\0b' }] }))],
  ];
  function encodeGood(): Buffer {
    return gzipSync(JSON.stringify(good));
  }
  for (const [what, content] of cases) {
    const f = join(dir, `bad-${what.replace(/ /g, '-')}`);
    fs.writeFileSync(f, content);
    await t.rejects(restore(f), { name: 'SnapshotError', code: 'ERR_PAGEWARM_SNAPSHOT' }, what);
  }
  t.equal(coldFraction(target), 0, 'the listed file was never read');
  t.ok(new SnapshotError('x') instanceof Error);
  await t.rejects(restore(join(dir, 'no-such-file')), { code: 'ENOENT' });
});

t.test('restore: only files unchanged since, only pages not resident', async (t) => {
  const d = join(dir, 'restore');
  fs.mkdirSync(d);
  const names = ['same', 'rewritten', 'replaced', 'truncated', 'removed', 'other'];
  for (const n of names) makeFile(join(d, n), 2 * MiB);
  await warmFiles(names.map((n) => join(d, n)));
  const set = await snapshot(d);
  if (!native) {
    const r = await restore(set);
    t.equal(r.files, 0, 'the fallback: nothing known hot, nothing restored');
    t.equal(r.skipped.filter((s) => s.reason === 'unknown').length, names.length);
    return;
  }
  // Changes after the snapshot.
  fs.utimesSync(join(d, 'rewritten'), new Date(), new Date(Date.now() + 5000)); // same size, new mtime
  makeFile(join(d, 'replaced.new'), 2 * MiB);
  fs.renameSync(join(d, 'replaced.new'), join(d, 'replaced')); // a new inode under the name
  fs.truncateSync(join(d, 'truncated'), MiB);
  fs.rmSync(join(d, 'removed'));
  for (const n of ['same', 'rewritten', 'replaced', 'truncated', 'other']) if (!(await makeCold(t, join(d, n)))) return;
  // 'other' is warm already: nothing of it to read.
  await warmFiles([join(d, 'other')]);

  const r = await restore(set);
  t.equal(r.files, 2, 'same and other');
  t.equal(r.restoredBytes, 2 * MiB, 'only the pages of same that were not resident');
  t.same(r.skipped.map((s) => [s.path.slice(d.length + 1), s.reason]).sort(),
    [['removed', 'missing'], ['replaced', 'changed'], ['rewritten', 'changed'], ['truncated', 'changed']]);
  t.equal((r.skipped.find((s) => s.reason === 'missing')!.error as NodeJS.ErrnoException).code, 'ENOENT');
  t.ok(warmedWhole(join(d, 'same')).whole, 'same is resident');
  for (const n of ['rewritten', 'replaced', 'truncated']) t.equal(coldFraction(join(d, n)), 0, `${n} was not read`);
});

t.test('restore within a budget, and aborted mid-way', async (t) => {
  const d = join(dir, 'budget');
  fs.mkdirSync(d);
  const paths = Array.from({ length: 40 }, (_, i) => makeFile(join(d, `f${i}`), 512 * 1024));
  await warmFiles(paths);
  const set = await snapshot(d);
  if (!native) return;
  for (const p of paths) if (!(await makeCold(t, p))) return;
  const r = await restore(set, { budget: 4 * MiB });
  t.equal(r.stoppedBy, 'budget');
  t.ok(r.restoredBytes <= 4 * MiB && r.restoredBytes >= 3 * MiB, `read ${r.restoredBytes} of a 4 MiB budget`);
  t.ok(r.files >= 6 && r.files <= 8, `${r.files} files restored`);

  for (const p of paths) if (!(await makeCold(t, p))) return;
  const before = fdList();
  const ac = new AbortController();
  await t.rejects(restore(set, { signal: ac.signal, progressIntervalMs: 0, onProgress: () => ac.abort() }), { name: 'AbortError' });
  t.same(fdList(), before, 'no descriptor left open');
  await t.rejects(restore(set, { budget: '150%' }), { code: 'ERR_INVALID_ARG_VALUE' });
  await t.rejects(restore(set, { budget: -1 }), { code: 'ERR_OUT_OF_RANGE' });
});

t.test('a percentage budget in a real memory cgroup stops at its share of the headroom', { skip: cgroupSkip() }, async (t) => {
  const cg = `/sys/fs/cgroup/memory/pagewarm-test-${process.pid}`;
  fs.mkdirSync(cg);
  t.teardown(() => {
    for (let i = 0; i < 50; i++) {
      try {
        fs.rmdirSync(cg);
        return;
      } catch {
        execFileSync('sleep', ['0.1']);
      }
    }
  });
  fs.writeFileSync(join(cg, 'memory.limit_in_bytes'), String(256 * MiB));
  const d = join(dir, 'cgroup');
  fs.mkdirSync(d);
  const paths = Array.from({ length: 48 }, (_, i) => makeFile(join(d, `f${i}`), 8 * MiB)); // 384 MiB
  for (const p of paths) if (!(await makeCold(t, p))) return;
  const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');
  const script = `const pw = require(${JSON.stringify(dist)});
const room = pw.memoryRoom();
pw.warmFiles(${JSON.stringify(paths)}, { budget: '50%' }).then((r) => console.log(JSON.stringify({ room, r: { ...r, failed: r.failed.length } })));`;
  // The child moves itself into the cgroup before loading anything.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS; // tap's hooks would load (and be charged to the cgroup) first
  const child = spawnSync(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(join(cg, 'cgroup.procs'))}, String(process.pid)); ${script}`], { encoding: 'utf8', env });
  t.equal(child.status, 0, child.stderr);
  const { room, r } = JSON.parse(child.stdout);
  t.ok(room.cgroup < 256 * MiB && room.fillable === room.cgroup, `the cgroup's headroom is what can be filled: ${room.cgroup}`);
  t.equal(r.stoppedBy, 'budget');
  t.ok(r.warmedBytes <= room.cgroup / 2 + 8 * MiB, `read ${r.warmedBytes}, at most half of ${room.cgroup} (and one file)`);
  t.ok(r.warmedBytes >= room.cgroup / 2 - 16 * MiB, 'and about that much');
  t.ok(r.files < paths.length);
});

function cgroupSkip(): string | false {
  if (!native) return 'the fallback reads through the libuv pool; budgets are tested natively';
  if (!asRoot) return 'needs root to make a memory cgroup';
  if (!fs.existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes') && !fs.existsSync('/sys/fs/cgroup/memory')) return 'no cgroup v1 memory controller here';
  try {
    fs.mkdirSync('/sys/fs/cgroup/memory/pagewarm-probe');
    fs.rmdirSync('/sys/fs/cgroup/memory/pagewarm-probe');
    return false;
  } catch (err) {
    return `cannot make a memory cgroup: ${(err as Error).message}`;
  }
}

t.test('other users: unreadable files are left out, undescribed ones listed as unknown', { skip: asRoot ? false : 'needs root to run as nobody' }, async (t) => {
  const d = join(dir, 'users');
  fs.mkdirSync(d, { mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  makeFile(join(d, 'shared'), MiB);
  fs.chmodSync(join(d, 'shared'), 0o644);
  makeFile(join(d, 'secret'), MiB);
  fs.chmodSync(join(d, 'secret'), 0o600);
  await warmFiles([join(d, 'shared')]);
  const nobody = Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }));
  const nogroup = Number(execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }));
  const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');
  const script = `const pw = require(${JSON.stringify(dist)});
pw.snapshot(${JSON.stringify(d)}).then(async (set) => { const r = await pw.restore(set); console.log(JSON.stringify({ set, r: { ...r, skipped: r.skipped.map((s) => s.reason) } })); });`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS; // tap's process-info hook writes into .tap/, which nobody may not
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', uid: nobody, gid: nogroup, cwd: '/', env });
  t.equal(child.status, 0, child.stderr);
  const { set, r } = JSON.parse(child.stdout);
  t.same(set.files.map((f: { path: string; source: string; ranges: number[] }) => [f.path, f.source, f.ranges.length]), [[join(d, 'shared'), 'unknown', 0]], 'the secret left out, the shared file unknown: never claimed hot');
  t.same(r.skipped, ['unknown']);
  t.equal(r.restoredBytes, 0);
});

t.test('keepSnapshot rewrites the file atomically every interval, and once more on stop()', async (t) => {
  const d = join(dir, 'keep');
  fs.mkdirSync(d);
  makeFile(join(d, 'a'), 64 * 1024);
  const file = join(dir, 'kept.hotset');
  const errors: Error[] = [];
  const keeper = keepSnapshot(d, file, { intervalMs: 30, onError: (e) => errors.push(e) });
  while (keeper.written < 3) await new Promise((r) => setTimeout(r, 10));
  makeFile(join(d, 'b'), 64 * 1024);
  await keeper.stop();
  t.ok(keeper.written >= 4);
  t.same(errors, []);
  const set = await loadHotSet(file);
  t.same(set.files.map((f) => f.path).sort(), [join(d, 'a'), join(d, 'b')], 'the last snapshot has the new file');
  t.same(fs.readdirSync(dir).filter((n) => n.includes('.tmp')), [], 'no temporary file left');
  t.throws(() => keepSnapshot(d, file, { intervalMs: 0 }), { code: 'ERR_OUT_OF_RANGE' });
  const bad = keepSnapshot(d, join(dir, 'no-such-dir', 'x'), { intervalMs: 1000, onError: (e) => errors.push(e) });
  await bad.stop();
  t.equal((errors[0] as NodeJS.ErrnoException | undefined)?.code, 'ENOENT', 'a write that fails is reported, not thrown');
});

t.test('the command: snapshot -o FILE, restore FILE --budget, --json', async (t) => {
  const d = join(dir, 'cli');
  fs.mkdirSync(d);
  const paths = Array.from({ length: 8 }, (_, i) => makeFile(join(d, `f${i}`), 256 * 1024));
  await warmFiles(paths);
  const run = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
    const stdout = new PassThrough();
    const stderr = Object.assign(new PassThrough(), { isTTY: false });
    let out = '';
    let err = '';
    stdout.on('data', (x) => (out += x));
    stderr.on('data', (x) => (err += x));
    const code = await main(args, { stdout, stderr });
    return { code, out, err };
  };
  const file = join(dir, 'cli.hotset');
  const s = await run(['snapshot', d, '-o', file]);
  t.equal(s.code, 0, s.err);
  t.match(s.out, /Files: 8\n/);
  if (native) t.match(s.out, /Hot: 2M\n/);
  for (const p of paths) if (native && !(await makeCold(t, p))) return;
  const r = await run(['restore', '--json', '--budget', '512K', file]);
  t.equal(r.code, 0, r.err);
  const doc = JSON.parse(r.out);
  t.match(doc, { command: 'restore', file, skipped: [], errors: [] });
  if (native) {
    t.equal(doc.stoppedBy, 'budget');
    t.ok(doc.bytes <= 512 * 1024);
  }
  const bad = join(dir, 'cli-bad.hotset');
  fs.writeFileSync(bad, 'x');
  const b = await run(['restore', bad]);
  t.equal(b.code, 1);
  t.match(b.err, /^pagewarm: .*cli-bad.hotset: not a pagewarm hot set/);
  t.equal((await run(['snapshot', d])).code, 2, 'snapshot needs -o');
  t.equal((await run(['restore', file, file])).code, 2, 'restore takes one FILE');
  t.equal((await run(['stat', '--budget', '1M', d])).code, 2, '--budget only for warm and restore');
  for (const bad of ['150%', '0%', 'x%', 'lots']) {
    const u = await run(['warm', '--budget', bad, d]);
    t.equal(u.code, 2, `--budget ${bad}: a usage error`);
    t.match(u.err, /^pagewarm: --budget: expected a byte count/);
  }
  t.equal((await run(['restore', '--budget', '101%', file])).code, 2);
  const w = await run(['warm', '--json', '--budget', '50%', d]);
  t.equal(w.code, 0, w.err);
});

t.test('warmFile with a budget: the range is read only if its missing bytes fit', async (t) => {
  const path = makeFile(join(dir, 'budget-one.bin'), 4 * MiB);
  if (!(await makeCold(t, path))) return;
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  t.equal(await warmFile(path, { budget: MiB }), 0, 'a 1 MiB budget: nothing of the cold 4 MiB is read');
  if (native) t.equal(residencySync(fd).residentPages, 0, 'and the file is still cold');
  const seen: Array<{ bytes: number; total: number; fromDisk: number }> = [];
  t.equal(await warmFile(path, { budget: 8 * MiB, onProgress: (p) => seen.push(p) }), 4 * MiB, 'an 8 MiB budget: all of it');
  if (native) t.equal(residencySync(fd).residentPages, 4 * MiB / PAGE, 'resident');
  t.match(seen[seen.length - 1], { bytes: 4 * MiB, total: 4 * MiB }, 'progress at the end');
  // Natively a resident range needs no budget; the fallback cannot tell what is resident, so
  // it counts the whole range against the budget, reads nothing, and knows of nothing resident.
  t.equal(await warmFile(path, { budget: 0 }), native ? 4 * MiB : 0, 'a budget of 0');
  await t.rejects(warmFile(path, { budget: '150%' }), { code: 'ERR_INVALID_ARG_VALUE' });
  await t.rejects(warmFile(join(dir, 'no-such'), { budget: MiB }), { code: 'ENOENT' });
});
