// The command's crawl controls, as vmtouch has them: --include / --exclude
// globs (names, paths, whole directories pruned), --max-size, --files-from
// (a file or standard input, newline- or NUL-separated, with directories
// walked), files vanishing between the walk and their turn, and the globs
// themselves (lib/files/glob.ts) against fnmatch's rules.
import t from 'tap';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main, type JsonReport } from '../lib/cli/main';
import { compileGlob } from '../lib/files/glob';
import { makeFile, scratchDir } from './helpers';

t.setTimeout(120_000);
const dir = scratchDir('pagewarm-crawl-');
const root = join(__dirname, '..');

async function json(args: string[]): Promise<{ code: number; report: JsonReport; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), { isTTY: false });
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await main(['--json', ...args], { stdout, stderr });
  return { code, report: JSON.parse(out) as JsonReport, stderr: err };
}
const paths = (r: JsonReport): string[] => r.files.map((f) => f.path).sort();

const tree = join(dir, 'site');
for (const p of ['a.html', 'b.css', 'logs/1.log', 'logs/2.log', 'img/x.png', 'img/big.png', '.git/HEAD']) {
  fs.mkdirSync(join(tree, p, '..'), { recursive: true });
  makeFile(join(tree, p), p.includes('big') ? 1 << 20 : 1000);
}

t.test('--include takes only matching files; directories are still entered', async (t) => {
  const { code, report } = await json(['stat', '--include', '*.log', '-I', '*.css', tree]);
  t.equal(code, 0);
  t.same(paths(report), [join(tree, 'b.css'), join(tree, 'logs/1.log'), join(tree, 'logs/2.log')]);
  t.equal(report.summary.skipped.excluded, 4);
});

t.test('--exclude skips files and prunes whole directories; a pattern with / matches the path below PATH', async (t) => {
  const pruned = await json(['stat', '--exclude', '.git', '-i', 'logs', tree]);
  t.same(paths(pruned.report), [join(tree, 'a.html'), join(tree, 'b.css'), join(tree, 'img/big.png'), join(tree, 'img/x.png')]);
  t.equal(pruned.report.summary.directories, 2, 'the tree and img/ only');
  const byPath = await json(['stat', '--exclude', 'img/*.png', '--exclude', '**/2.log', tree]);
  t.same(paths(byPath.report), [join(tree, '.git/HEAD'), join(tree, 'a.html'), join(tree, 'b.css'), join(tree, 'logs/1.log')]);
});

t.test('--max-size skips larger files', async (t) => {
  const { report } = await json(['warm', '--max-size', '64K', tree]);
  t.notOk(paths(report).includes(join(tree, 'img/big.png')));
  t.equal(report.files.length, 6);
  t.equal(report.summary.skipped.tooLarge, 1);
});

t.test('--files-from: a list file, newline- or NUL-separated; directories in it are walked', async (t) => {
  const list = join(dir, 'list');
  fs.writeFileSync(list, `${join(tree, 'a.html')}\n${join(tree, 'logs')}\n\n`);
  const r = await json(['stat', '--files-from', list]);
  t.equal(r.code, 0);
  t.same(paths(r.report), [join(tree, 'a.html'), join(tree, 'logs/1.log'), join(tree, 'logs/2.log')]);

  const odd = join(dir, 'name\nwith newline');
  makeFile(odd, 100);
  const nul = join(dir, 'list0');
  fs.writeFileSync(nul, `${odd}\0${join(tree, 'b.css')}\0`);
  const r0 = await json(['stat', '-0', '--files-from', nul, join(tree, 'a.html')]);
  t.same(paths(r0.report), [join(dir, 'name\nwith newline'), join(tree, 'a.html'), join(tree, 'b.css')].sort(), 'PATHs and the list together');

  const bad = await json(['stat', '--files-from', join(dir, 'no-such-list')]);
  t.equal(bad.code, 1, 'an unreadable list is an error');
  t.match(bad.stderr, /no-such-list: no such file or directory \(ENOENT\)/);
});

t.test('--files-from - reads standard input (a child process)', async (t) => {
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
  const env: NodeJS.ProcessEnv = { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' };
  const r = spawnSync(process.execPath, [...loader, join(root, 'lib', 'cli', 'main.ts'), 'stat', '--json', '-f', '-'], {
    input: `${join(tree, 'b.css')}\n${join(tree, 'missing')}\n`,
    encoding: 'utf8',
    env,
  });
  t.equal(r.status, 1, 'a listed path that does not exist is reported: exit 1');
  const report = JSON.parse(r.stdout) as JsonReport;
  t.same(paths(report), [join(tree, 'b.css')]);
  t.same(report.errors.map((e) => e.code), ['ENOENT']);
});

t.test('usage errors', async (t) => {
  const stderr = Object.assign(new PassThrough(), { isTTY: false });
  let err = '';
  stderr.on('data', (d) => (err += d));
  t.equal(await main(['stat', '-0', tree], { stdout: new PassThrough(), stderr }), 2, '-0 without a list');
  t.equal(await main(['stat', '--max-size', 'lots', tree], { stdout: new PassThrough(), stderr }), 2);
  t.equal(await main(['stat', '--include', '', tree], { stdout: new PassThrough(), stderr }), 2);
  t.equal(await main(['stat'], { stdout: new PassThrough(), stderr }), 2, 'no PATH and no list');
  t.match(err, /--null needs --files-from/);
});

t.test('globs follow fnmatch', async (t) => {
  const rows: Array<[string, string, string, boolean]> = [
    ['*.log', 'a.log', 'x/a.log', true],
    ['*.log', 'a.txt', 'a.txt', false],
    ['*', '.hidden', '.hidden', true], // no FNM_PERIOD, as vmtouch
    ['f?.dat', 'f1.dat', 'f1.dat', true],
    ['f?.dat', 'f10.dat', 'f10.dat', false],
    ['f[0-4].dat', 'f5.dat', 'f5.dat', false],
    ['f[!0-4].dat', 'f5.dat', 'f5.dat', true],
    ['f[^0-4].dat', 'f3.dat', 'f3.dat', false],
    ['[]x]', ']', ']', true],
    ['[a', '[a', '[a', true], // an unclosed set is literal
    ['a\\*', 'a*', 'a*', true],
    ['a\\*', 'ab', 'ab', false],
    ['a.b', 'axb', 'axb', false], // regular-expression characters are literal
    ['d/*', 'x', 'd/x', true],
    ['d/*', 'y', 'd/e/y', false], // * stops at /
    ['**/y', 'y', 'd/e/y', true],
    ['**/y', 'y', 'y', true],
    ['d/**', 'y', 'd/e/y', true],
    ['/d/x', 'x', 'd/x', true], // a leading / anchors at PATH
  ];
  for (const [pattern, name, rel, want] of rows) t.equal(compileGlob(pattern).test(name, rel), want, `${pattern} ~ ${rel}`);
});
