// sendfile / sendfileSync, the descriptor-level send's old names, stay for
// one minor version as deprecated aliases of transferTo / transferToSync:
// the same bytes, and one DeprecationWarning (PAGEWARM_DEP0001) per process.
// Each case runs in a child process, so "once per process" is observed
// from a clean start.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { compiledLib } from './send-helpers';

const lib = compiledLib();

function run(script: string): { warnings: { name: string; code: string; message: string }[]; results: number[] } {
  const r = spawnSync(process.execPath, ['-e', `
    const warnings = [];
    process.on('warning', (w) => warnings.push({ name: w.name, code: w.code, message: w.message }));
    const pw = require(${JSON.stringify(lib)});
    const fs = require('node:fs');
    const os = require('node:os');
    const path = require('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pagewarm-dep-'));
    const src = path.join(dir, 'src');
    fs.writeFileSync(src, Buffer.alloc(100000, 7));
    const inFd = fs.openSync(src, 'r');
    const outFd = fs.openSync(path.join(dir, 'out'), 'w');
    (async () => {
      const results = [];
      ${script}
      fs.closeSync(inFd); fs.closeSync(outFd); fs.rmSync(dir, { recursive: true });
      setImmediate(() => console.log(JSON.stringify({ warnings, results })));
    })().catch((e) => { console.error(e); process.exit(1); });
  `], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

t.test('the old names send the same bytes and warn once, with code PAGEWARM_DEP0001', async (t) => {
  const { warnings, results } = run(`
    results.push(await pw.sendfile(outFd, inFd, 0, 1000));
    results.push(pw.sendfileSync(outFd, inFd, 1000, 2000));
    results.push(await pw.sendfile(outFd, inFd, 3000, 500));
    results.push(fs.fstatSync(outFd).size);
  `);
  t.same(results, [1000, 2000, 500, 3500], 'bytes sent, as transferTo would');
  const dep = warnings.filter((w) => w.name === 'DeprecationWarning');
  t.equal(dep.length, 1, 'one DeprecationWarning for the process (both aliases share the code)');
  t.equal(dep[0]?.code, 'PAGEWARM_DEP0001');
  t.match(dep[0]?.message, /transferTo/, 'the warning names the replacement');
});

t.test('the new names never warn', async (t) => {
  const { warnings, results } = run(`
    results.push(await pw.transferTo(outFd, inFd, 0, 1000));
    results.push(pw.transferToSync(outFd, inFd, 1000, 2000));
  `);
  t.same(results, [1000, 2000]);
  t.same(warnings.filter((w) => w.name === 'DeprecationWarning'), []);
});

t.test('errors are the same through the alias', async (t) => {
  const { warnings, results } = run(`
    for (const f of [pw.sendfile, pw.transferTo]) {
      try { await f(outFd, 1 << 30, 0, 1); } catch (e) { results.push(e.code + ' ' + e.syscall); }
    }
  `);
  t.same(results, ['EBADF sendfile', 'EBADF sendfile']);
  t.equal(warnings.filter((w) => w.code === 'PAGEWARM_DEP0001').length, 1);
});
