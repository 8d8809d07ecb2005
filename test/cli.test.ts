// The `pagewarm` command (lib/cli/main.ts): stat agrees with util-linux fincore on
// every file, exit codes, the --json document, -L, --max-depth, mount
// boundaries, the progress bar, and permission errors as a non-root user.
//
// Most cases run main() in this process with captured streams (fast); exit
// codes, signals-free process behaviour and other users run the command in
// a child process.
import t from 'tap';
import * as fs from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main, type JsonReport } from '../lib/cli/main';
import { residencyMap } from '../lib/cli/map';
import { advise, capabilities, prepareForRead, residencySync, type Residency } from '../lib/index';
import { scratchDir, makeFile, makeCold, warmedWhole } from './helpers';

// Several child processes run the TypeScript source (a few seconds each on a busy machine).
t.setTimeout(300_000);

const MiB = 1 << 20;
const caps = capabilities();
const root = join(__dirname, '..');
const dir = scratchDir('pagewarm-cli-');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs main() in this process; stderr may pretend to be a terminal. */
async function cli(args: string[], opts: { tty?: boolean } = {}): Promise<Run> {
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), { isTTY: opts.tty === true, columns: 100 });
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await main(args, { stdout, stderr });
  return { code, stdout: out, stderr: err };
}

async function json(args: string[]): Promise<JsonReport> {
  const r = await cli(['--json', ...args]);
  return JSON.parse(r.stdout) as JsonReport;
}

/**
 * The command as a child process: lib/cli/main.ts through tap's TypeScript loader
 * (so the test needs no build), or the compiled bin when that loader is absent.
 */
function spawnCli(args: string[], opts: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}): Run {
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const command = loader.length > 0 ? [...loader, join(root, 'lib', 'cli', 'main.ts')] : [join(root, 'bin', 'pagewarm.js')];
  const env: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1', ...opts.env };
  delete env.NODE_OPTIONS; // tap's process-info hook writes into .tap/, which other users may not
  const r = spawnSync(process.execPath, [...command, ...args], { encoding: 'utf8', env, uid: opts.uid, gid: opts.gid, cwd: '/' });
  if (r.error) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** fincore's resident pages of each path. */
/** residencySync of a whole file by path. */
function residencyOf(path: string): Residency {
  const fd = fs.openSync(path, 'r');
  try {
    return residencySync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fincorePages(paths: string[]): Map<string, number> {
  const out = execFileSync('fincore', ['--bytes', '--noheadings', '--raw', '--output', 'PAGES,FILE', ...paths], { encoding: 'utf8' });
  const pages = new Map<string, number>();
  for (const line of out.trim().split('\n')) {
    const space = line.indexOf(' ');
    pages.set(line.slice(space + 1), Number(line.slice(0, space)));
  }
  return pages;
}

async function warmRange(path: string, offset: number, length: number): Promise<void> {
  const fh = await fs.promises.open(path, 'r');
  await prepareForRead(fh, offset, length);
  await fh.close();
}

t.test('stat agrees with fincore on every file', async (t) => {
  const tree = join(dir, 'fincore');
  fs.mkdirSync(join(tree, 'sub', 'deeper'), { recursive: true });
  const files = {
    cold: makeFile(join(tree, 'cold'), 24 * MiB),
    warm: makeFile(join(tree, 'warm'), 8 * MiB + 100),
    partial: makeFile(join(tree, 'sub', 'partial'), 32 * MiB),
    small: makeFile(join(tree, 'sub', 'small'), 3000),
    empty: makeFile(join(tree, 'sub', 'empty'), 0),
    deep: makeFile(join(tree, 'sub', 'deeper', 'deep'), 5 * MiB),
  };
  const all = Object.values(files);
  for (let attempt = 1; ; attempt++) {
    // Set the scene: some files cold, some warm, one warm in two ranges.
    for (const f of all) await makeCold(t, f);
    await warmRange(files.warm, 0, 8 * MiB + 100);
    await warmRange(files.partial, 4 * MiB, 2 * MiB);
    await warmRange(files.partial, 20 * MiB, 5 * MiB + 1);
    await warmRange(files.small, 0, 1);
    // These VMs page idle cache out in the background: read fincore before
    // and after pagewarm, and judge only when the two agree.
    const before = fincorePages(all);
    const report = await json(['stat', tree]);
    const after = fincorePages(all);
    if ([...before].some(([p, n]) => after.get(p) !== n) && attempt < 5) {
      t.comment(`attempt ${attempt}: the page cache changed under fincore, again`);
      continue;
    }
    t.equal(report.files.length, all.length, 'every file reported');
    t.equal(report.summary.directories, 3);
    let residentSum = 0;
    for (const f of report.files) {
      const want = after.get(f.path);
      t.not(want, undefined, `${f.path} is one of ours`);
      if (caps.native) {
        t.equal(f.source, 'cachestat', `${f.path}: cachestat`);
        t.equal(f.residentPages, want, `${f.path}: ${f.residentPages} resident pages, fincore says ${want}`);
        residentSum += f.residentPages ?? 0;
      } else {
        t.match(f, { source: 'unknown', residentPages: null, residentBytes: null }, `${f.path}: the fallback does not know`);
      }
      t.equal(f.bytes, fs.statSync(f.path).size, `${f.path}: bytes`);
      t.equal(f.pages, Math.ceil(f.bytes / caps.pageSize), `${f.path}: pages`);
    }
    if (caps.native) {
      t.equal(report.summary.residentPages, residentSum, 'the summary adds them up');
      t.ok(after.get(files.partial)! >= (7 * MiB) / caps.pageSize, 'the partial file is partly resident');
      t.ok(after.get(files.partial)! < (32 * MiB) / caps.pageSize, 'and partly not');
      t.equal(after.get(files.cold), 0, 'the cold file is cold');
    } else {
      t.equal(report.summary.residentPercent, null, 'no percentage without knowledge');
    }
    break;
  }
});

t.test('warm then stat: every page resident, by pagewarm and by fincore', async (t) => {
  const tree = join(dir, 'warm');
  fs.mkdirSync(join(tree, 'a'), { recursive: true });
  const paths = [makeFile(join(tree, 'one'), 16 * MiB), makeFile(join(tree, 'a', 'two'), 4 * MiB + 1)];
  for (const p of paths) await makeCold(t, p);
  const r = await json(['warm', tree]);
  t.equal(r.summary.files, 2);
  t.equal(r.summary.warmedBytes, 20 * MiB + 1, 'warmedBytes covers both files');
  let reclaimed = 0;
  for (const f of r.files) {
    t.equal(f.warmedBytes, f.bytes, `${f.path}: warmed to the end`);
    const w = warmedWhole(f.path);
    t.ok(w.whole, `${f.path}: every page read in: ${w.counts}`);
    // What the command reported, less what the VM's background reclaim took since (cachestat counts it).
    const since = caps.native ? residencyOf(f.path).evictedPages ?? 0 : 0;
    reclaimed += since;
    if (caps.native) t.ok((f.residentPages ?? 0) + since >= f.pages, `${f.path}: pagewarm agrees (${f.residentPages} resident, ${since} reclaimed since)`);
  }
  if (caps.native && reclaimed === 0) t.equal(r.summary.residentPercent, 100);
});

t.test('evict then stat: nothing resident (native), or a clear note (fallback)', async (t) => {
  const path = makeFile(join(dir, 'evict-me'), 8 * MiB);
  await warmRange(path, 0, 8 * MiB);
  const r = await cli(['evict', path]);
  t.equal(r.code, 0);
  const pages = fincorePages([path]).get(path)!;
  if (caps.native) {
    t.equal(pages, 0, 'fincore: evicted');
    t.match(r.stdout, /Resident Pages: 0\/2048 {2}0\/8M {2}0%/);
  } else {
    t.match(r.stdout, /evict has no effect in the portable fallback/);
  }
});

t.test('--offset and --length apply to each file', async (t) => {
  const path = makeFile(join(dir, 'ranged'), 8 * MiB);
  await makeCold(t, path);
  const r = await json(['warm', '--offset', '1M', '--length', '64K', path]);
  t.match(r.files[0], { bytes: 64 * 1024, pages: 16, warmedBytes: 64 * 1024 });
  if (caps.native) t.equal(r.files[0].residentPages, 16, 'the range is resident');
  const past = await json(['stat', '-o', '9M', path]);
  t.match(past.files[0], { bytes: 0, pages: 0 }, 'a range past the end is empty');
});

t.test('the --json document', async (t) => {
  const tree = join(dir, 'shape');
  fs.mkdirSync(tree);
  makeFile(join(tree, 'f'), 5000);
  const r = await json(['stat', tree, join(dir, 'no-such-file')]);
  t.match(r, {
    command: 'stat',
    version: String,
    capabilities: { native: Boolean, zeroCopySend: Boolean, cachestat: Boolean, fastPath: Boolean, pageSize: Number },
    files: [{ path: join(tree, 'f'), bytes: 5000, pages: 2, source: String }],
    errors: [{ path: join(dir, 'no-such-file'), code: 'ENOENT', message: 'no such file or directory (ENOENT)' }],
    summary: {
      files: 1,
      directories: 1,
      bytes: 5000,
      pages: 2,
      residentPages: Number,
      residentBytes: Number,
      unknownPages: Number,
      unknownBytes: Number,
      skipped: { symlinks: 0, otherMounts: 0, special: 0, hardLinks: 0, brokenLinks: 0 },
      errors: 1,
      interrupted: false,
      elapsedMs: Number,
    },
  });
  t.equal(r.files.length, 1);
  t.notOk('warmedBytes' in r.summary, 'warmedBytes only for warm');
  const text = await cli(['stat', tree]);
  t.match(text.stdout, /^ {11}Files: 1\n {5}Directories: 1\n {2}Resident Pages: .+\n {9}Elapsed: [\d.e+-]+ seconds\n$/, 'the vmtouch-like summary');
});

t.test('symbolic links: skipped unless -L, loops and broken links survive -L', async (t) => {
  const tree = join(dir, 'links');
  const outside = join(dir, 'links-outside');
  fs.mkdirSync(join(tree, 'real'), { recursive: true });
  fs.mkdirSync(outside);
  makeFile(join(tree, 'real', 'file'), 4096);
  makeFile(join(outside, 'other'), 8192);
  fs.symlinkSync(join(outside, 'other'), join(tree, 'to-file'));
  fs.symlinkSync(outside, join(tree, 'to-dir'));
  fs.symlinkSync('..', join(tree, 'real', 'loop'));
  fs.symlinkSync(join(dir, 'nowhere'), join(tree, 'broken'));
  fs.linkSync(join(tree, 'real', 'file'), join(tree, 'hard'));

  const plain = await json(['stat', tree]);
  t.same(plain.files.map((f) => f.path), [join(tree, 'hard')], 'only real files, a hard-linked file once');
  t.match(plain.summary, { files: 1, directories: 2, skipped: { symlinks: 4, hardLinks: 1 } });

  const followed = await json(['stat', '-L', tree]);
  t.same(
    followed.files.map((f) => f.path).sort(),
    [join(tree, 'hard'), join(tree, 'to-dir', 'other')].sort(),
    'links followed; the file behind to-file and to-dir/other is counted once',
  );
  t.match(followed.summary, { directories: 3, skipped: { symlinks: 0, brokenLinks: 1, hardLinks: 2 } }, 'the loop ends');

  const named = await cli(['stat', join(tree, 'to-file')]);
  t.equal(named.code, 0, 'a symlink named on the command line is skipped, not an error');
  t.match(named.stderr, /skipping symbolic link .* \(use -L to follow symbolic links\)/);
  const namedL = await json(['stat', '-L', join(tree, 'to-file')]);
  t.match(namedL.files, [{ bytes: 8192 }], '-L follows it');
});

t.test('--max-depth counts directory levels below each PATH', async (t) => {
  const tree = join(dir, 'depth');
  fs.mkdirSync(join(tree, 'l1', 'l2', 'l3'), { recursive: true });
  makeFile(join(tree, 'f0'), 10);
  makeFile(join(tree, 'l1', 'f1'), 10);
  makeFile(join(tree, 'l1', 'l2', 'f2'), 10);
  makeFile(join(tree, 'l1', 'l2', 'l3', 'f3'), 10);
  const names = async (depth: string[]): Promise<string[]> =>
    (await json(['stat', ...depth, tree])).files.map((f) => f.path.slice(tree.length + 1));
  t.same(await names(['--max-depth', '0']), [], '0: the PATH itself only');
  t.same(await names(['-d', '1']), ['f0']);
  t.same(await names(['-d', '2']), ['f0', 'l1/f1']);
  t.same(await names([]), ['f0', 'l1/f1', 'l1/l2/f2', 'l1/l2/l3/f3'], 'no limit by default');
  const fileAtZero = await json(['stat', '-d', '0', join(tree, 'f0')]);
  t.equal(fileAtZero.files.length, 1, 'a file named as PATH is taken at depth 0');
});

t.test('other filesystems are not entered unless --cross-mounts', async (t) => {
  const tree = join(dir, 'mounts');
  const mnt = join(tree, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  makeFile(join(tree, 'here'), 100);
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'pagewarm-test', mnt]).status === 0;
  let target = mnt;
  let extra: string[] = [];
  if (mounted) {
    t.teardown(() => {
      spawnSync('umount', ['-l', mnt]);
    });
  } else {
    // No mount permission: reach /dev/shm (its own tmpfs) through a followed link.
    target = fs.mkdtempSync('/dev/shm/pagewarm-cli-');
    t.teardown(() => fs.rmSync(target, { recursive: true, force: true }));
    fs.rmdirSync(mnt);
    fs.symlinkSync(target, mnt);
    extra = ['-L'];
  }
  t.not(fs.statSync(target).dev, fs.statSync(tree).dev, `${mounted ? 'a tmpfs mount' : '/dev/shm'} is another filesystem`);
  fs.writeFileSync(join(target, 'there'), 'x'.repeat(100));
  const stay = await json(['stat', ...extra, tree]);
  t.same(stay.files.map((f) => f.path), [join(tree, 'here')]);
  t.equal(stay.summary.skipped.otherMounts, 1);
  const cross = await json(['stat', ...extra, '--cross-mounts', tree]);
  t.same(cross.files.map((f) => f.path), [join(tree, 'here'), join(tree, 'mnt', 'there')]);
  t.equal(cross.summary.skipped.otherMounts, 0);
  const named = await json(['stat', ...extra, mnt]);
  t.equal(named.files.length, 1, 'a PATH on another filesystem is walked: the boundary is per PATH');
});

t.test('progress bar on a terminal only; --quiet prints nothing', async (t) => {
  const path = makeFile(join(dir, 'progress'), 8 * MiB);
  await makeCold(t, path);
  const tty = await cli(['warm', path], { tty: true });
  t.match(tty.stderr, /\r\[[#.]+\] \S+\/8M {2}\S+\/s {2}ETA \S+ {2}\d\/1 files/, 'bytes, rate, ETA and files');
  t.match(tty.stderr, /\r\[#+\] 8M\/8M .* 1\/1 files/, 'ends full');
  t.match(tty.stderr, /\r\x1b\[K$/, 'and clears its line for the summary');
  const piped = await cli(['warm', path]);
  t.equal(piped.stderr, '', 'no progress when stderr is not a terminal');
  t.match(piped.stdout, /Warmed: 8M/);
  const quiet = await cli(['warm', '-q', path], { tty: true });
  t.same([quiet.stdout, quiet.stderr], ['', ''], '--quiet');
  const noBar = await cli(['warm', '--no-progress', path], { tty: true });
  t.equal(noBar.stderr, '', '--no-progress');
  const asJson = await cli(['warm', '--json', path], { tty: true });
  t.equal(asJson.stderr, '', 'no progress with --json');
});

t.test('interrupted: in-flight work stops, the summary says so, exit 130', async (t) => {
  const path = makeFile(join(dir, 'interrupt'), 4 * MiB);
  const before = process.listeners('SIGINT');
  const running = cli(['warm', path]);
  // main() listens for SIGINT while it works; call its listener as the signal would.
  const added = process.listeners('SIGINT').filter((l) => !before.includes(l));
  t.equal(added.length, 1, 'main() listens for SIGINT');
  added[0]('SIGINT');
  const r = await running;
  t.equal(process.listeners('SIGINT').length, before.length, 'and stops listening when done');
  t.equal(r.code, 130);
  t.match(r.stdout, /Interrupted: yes/);
});

t.test('exit codes and messages', async (t) => {
  const good = makeFile(join(dir, 'good'), 4096);
  // As a process: the exit status is main()'s.
  const ok = spawnCli(['stat', good]);
  t.equal(ok.code, 0, 'all paths handled: 0');
  t.match(ok.stdout, /Files: 1/);
  const missing = spawnCli(['warm', join(dir, 'missing'), good]);
  t.equal(missing.code, 1, 'a missing file: 1');
  t.match(missing.stderr, `pagewarm: ${join(dir, 'missing')}: no such file or directory (ENOENT)`);
  t.match(missing.stdout, /Files: 1\n[^]*Errors: 1/, 'the other file was still warmed');
  const usage = spawnCli(['stat', '--bogus', good]);
  t.equal(usage.code, 2, 'bad usage: 2');
  t.match(usage.stderr, /Unknown option '--bogus'[^]*Try 'pagewarm --help'/);
  const help = spawnCli(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /Usage: pagewarm <warm\|stat\|evict>/);

  // The rest in this process.

  for (const [args, message] of [
    [[], /missing command/],
    [['frob', good], /unknown command 'frob'/],
    [['stat'], /stat: missing PATH/],
    [['stat', '--bogus', good], /Unknown option '--bogus'/],
    [['stat', '--offset', 'lots', good], /--offset: expected a byte count/],
    [['stat', '--length', '-5', good], /--length/],
    [['warm', '--threads', '0', good], /--threads: expected an integer from 1 to 256/],
    [['warm', '--max-depth', 'x', good], /--max-depth/],
  ] as Array<[string[], RegExp]>) {
    const r = await cli(args);
    t.equal(r.code, 2, `bad usage ${JSON.stringify(args)}: 2`);
    t.match(r.stderr, message);
    t.match(r.stderr, /Try 'pagewarm --help'/);
    t.equal(r.stdout, '', 'nothing on stdout');
  }

  const version = await cli(['-V']);
  t.equal(version.stdout.trim(), JSON.parse(fs.readFileSync(join(root, 'package.json'), 'utf8')).version);

  const special = await cli(['stat', '/dev/null']);
  t.equal(special.code, 1, 'a character device named on the command line');
  t.match(special.stderr, /\/dev\/null: not a regular file, block device or directory/);
});

const asRoot = process.getuid?.() === 0;
t.test('permission errors as a non-root user: reported, the rest handled, exit 1', { skip: asRoot ? false : 'needs root to run the command as nobody' }, async (t) => {
  const nobody = execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim();
  const nogroup = execFileSync('id', ['-g', 'nobody'], { encoding: 'utf8' }).trim();
  const tree = fs.mkdtempSync('/tmp/pagewarm-cli-perm-');
  t.teardown(() => fs.rmSync(tree, { recursive: true, force: true }));
  fs.chmodSync(tree, 0o755);
  makeFile(join(tree, 'public'), 8192);
  fs.chmodSync(join(tree, 'public'), 0o644);
  makeFile(join(tree, 'secret'), 4096);
  fs.chmodSync(join(tree, 'secret'), 0o600);
  fs.mkdirSync(join(tree, 'locked'));
  makeFile(join(tree, 'locked', 'inside'), 4096);
  fs.chmodSync(join(tree, 'locked'), 0o700);

  const r = spawnCli(['warm', '--json', tree], { uid: Number(nobody), gid: Number(nogroup) });
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, `pagewarm: ${join(tree, 'secret')}: permission denied (EACCES)`);
  t.match(r.stderr, `pagewarm: ${join(tree, 'locked')}: permission denied (EACCES)`);
  const report = JSON.parse(r.stdout) as JsonReport;
  t.same(
    report.errors.map((e) => [e.path, e.code]),
    [
      [join(tree, 'locked'), 'EACCES'],
      [join(tree, 'secret'), 'EACCES'],
    ],
  );
  t.equal(report.files.length, 1, 'the readable file was still handled');
  // Not the owner and not a writer: the kernel will not tell nobody the truth.
  t.match(report.files[0], { path: join(tree, 'public'), warmedBytes: 8192, source: 'unknown', residentPages: null });
  const warmed = warmedWhole(join(tree, 'public'));
  t.ok(warmed.whole, `but it was warmed, as root sees it: ${warmed.counts}`);
  const text = spawnCli(['stat', tree], { uid: Number(nobody), gid: Number(nogroup) });
  t.match(text.stdout, /Resident Pages: unknown\/2 {2}\(/, 'the text summary says unknown, with the reason');
});

t.test('stat --map: a residency map per whole file, and --json the resident byte ranges', async (t) => {
  const file = makeFile(join(dir, 'map.bin'), 8 * MiB);
  if (!(await makeCold(t, file))) return;
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  // The first quarter resident (fadvise RANDOM: no readahead past it).
  advise(fd, 0, 0, 'random');
  await prepareForRead(fd, 0, 2 * MiB);
  const r = await cli(['stat', '--map', file]);
  t.equal(r.code, 0);
  t.match(r.stdout, /^map: '#' every page resident, '\+' half or more, '\.' some, ' ' none$/m, 'the legend');
  if (!caps.native) {
    // The fallback cannot tell residency: no map, and the reason.
    t.match(r.stdout, /unknown\/2048 pages\n {2}\(the kernel does not tell this process\)/);
    t.equal((await cli(['warm', '--map', file])).code, 2, '--map is for stat');
    return;
  }
  const line = /^ {2}\[(.*)\]$/m.exec(r.stdout)?.[1];
  t.ok(line !== undefined, 'a map line');
  {
    t.equal(line, '#'.repeat(15) + ' '.repeat(45), 'the first quarter of 60 columns is resident');
    const report = await json(['stat', '--map', file]);
    t.same(report.files[0]!.residentRanges, [[0, 2 * MiB]], '--json: the resident byte ranges');
  }
  t.equal((await cli(['warm', '--map', file])).code, 2, '--map is for stat');
  t.equal((await cli(['stat', '--map', '--offset', '4K', file])).code, 2, '--map maps whole files');
});

t.test('the map: buckets, partial buckets and small files', async (t) => {

  t.equal(residencyMap([], 100, 10), ' '.repeat(10));
  t.equal(residencyMap([0, 100], 100, 10), '#'.repeat(10));
  t.equal(residencyMap([0, 5], 100, 10), '+' + ' '.repeat(9), 'half a bucket: +');
  t.equal(residencyMap([0, 3], 100, 10), '.' + ' '.repeat(9), 'less than half: .');
  t.equal(residencyMap([95, 5], 100, 10), ' '.repeat(9) + '+');
  t.equal(residencyMap([1, 2], 3, 60), ' ##', 'fewer pages than columns: one column a page');
  t.equal(residencyMap([0, 1], 0, 60), '', 'an empty file');
  t.equal(residencyMap([0, 334], 1000, 3), '#. ', 'fractional buckets');
});
