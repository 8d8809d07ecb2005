// Descriptor exhaustion: every operation in flight holds its own duplicate of
// the caller's descriptor (that is what makes closing it mid-flight safe), so
// RLIMIT_NOFILE bounds how many can be in flight at once.
//
// Outcome (also in docs/guarantees.md): calls beyond the limit reject
// with EMFILE (`EMFILE: too many open files, sendfile` / `..., cachestat`)
// before any work starts; the others complete exactly; once they settle every
// descriptor is returned and new calls work. No crash, no hang.
//
// Runs in a child process under `prlimit --nofile=256` (util-linux).
//
// The portable fallback (capabilities().native false) holds a private reopen
// of the descriptor per warm-up in flight and is refused with EMFILE in the
// same way; its evict is a no-op, so the file starts cold through dd.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { scratchDir, makeFile } from './helpers';

const MiB = 1 << 20;
const dir = scratchDir();
const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');
const path = makeFile(join(dir, 'f'), 32 * MiB);

const script = `
const pw = require(${JSON.stringify(dist)});
const fs = require('fs'), net = require('net');
const { execFileSync } = require('child_process');
const count = () => fs.readdirSync('/proc/self/fd').length;
const list = () => fs.readdirSync('/proc/self/fd').map((n) => { try { return n + ' -> ' + fs.readlinkSync('/proc/self/fd/' + n); } catch { return ''; } }).filter(Boolean);
const native = pw.capabilities().native;
(async () => {
  const fd = fs.openSync(${JSON.stringify(path)}, 'r');
  // (The fallback has no pool, poller or /dev/null and never counts sendfileChunks: one warm-up.)
  for (let i = 0; i < (native ? 5 : 1) && pw.stats().sendfileChunks === 0; i++) {
    pw.evict(fd); // can miss a page still in a per-CPU LRU batch: retry until a warm-up read from disk
    await pw.prepareForRead(fd, 0, 4096); // pool, poller, /dev/null
  }
  const server = net.createServer((s) => s.on('error', () => {}).resume());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const sock = net.connect(server.address().port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  pw.evict(fd);
  // The fallback's evict is a no-op: dd drops the cache instead (posix_fadvise DONTNEED).
  if (!native) execFileSync('dd', ['iflag=nocache', 'count=0', 'status=none'], { stdio: [fd, 'ignore', 'inherit'] });
  const before = count();
  const listBefore = list();
  const limit = Number(/Max open files\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))[1]);
  const tally = {};
  const note = (k) => (tally[k] = (tally[k] || 0) + 1);
  const calls = [];
  for (let i = 0; i < 2000; i++) {
    // Scattered (7919 is prime to 2048), so the kernel's readahead for one
    // warm-up does not make the next ranges resident before their calls:
    // those would settle on the JS thread and hold no descriptor.
    const offset = ((i * 7919) % 2048) * 16384;
    calls.push(pw.prepareForRead(fd, offset, 16384).then(
      (n) => note(n === 16384 ? 'warm ok' : 'warm WRONG ' + n),
      (e) => note('warm ' + e.code + ' ' + e.syscall)));
    if (i % 10 === 0) calls.push(pw.residency(fd, offset, 16384).then(() => note('residency ok'), (e) => note('residency ' + e.code + ' ' + e.syscall)));
    // 160 KiB: more than a send begun on the JS thread may be (128 KiB), so
    // each holds its two duplicates on pagewarm's threads. The receiver runs
    // on this (busy) event loop, so 200 of them (32 MiB) cannot drain through
    // the loopback's buffers before this loop ends: 400 duplicates exceed the
    // limit whatever the pool's speed. (Warm-ups may not: once readahead makes
    // their ranges resident they settle on the JS thread without one.)
    if (i % 10 === 0) calls.push(pw.transferTo(sock._handle.fd, fd, offset, 163840).then((n) => note(n === 163840 ? 'sendfile ok' : 'sendfile WRONG'), (e) => note('sendfile ' + e.code)));
  }
  // sendFile opens (or reopens) its source first: refused with EMFILE, the socket untouched.
  const sf = await pw.sendFile(sock, ${JSON.stringify(path)}, { length: 10 }).then(() => 'ok', (e) => e.code + (sock.destroyed ? ' destroyed' : ' socket intact'));
  await Promise.all(calls);
  for (let i = 0; i < 100 && pw.stats().queued + pw.stats().active + pw.stats().waiting > 0; i++) await new Promise((r) => setTimeout(r, 20));
  const after = count();
  const listAfter = list();
  const opened = listAfter.filter((x) => !listBefore.includes(x));
  const closed = listBefore.filter((x) => !listAfter.includes(x));
  const again = await pw.prepareForRead(fd, 0, 1 << 20);
  const sfAfter = await pw.sendFile(sock, fd, { length: 4096 }).then((r) => r.bytes);
  console.log(JSON.stringify({ limit, before, after, opened, closed, tally, sf, again, sfAfter }));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
`;

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

t.test('2,000 warm-ups (and residency, transferTo, sendFile) in flight under a 256-descriptor limit', { skip: !hasPrlimit && 'prlimit (util-linux) is not installed' }, (t) => {
  const r = spawnSync('prlimit', ['--nofile=256:256', process.execPath, '-e', script], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.signal, null, 'no crash, no hang');
  t.equal(r.status, 0, r.stderr || 'exited cleanly');
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
  t.equal(out.limit, 256, 'ran under RLIMIT_NOFILE 256');
  const kinds = Object.keys(out.tally);
  t.same(
    kinds.filter((k) => !/^(warm ok|residency ok|sendfile ok|warm EMFILE sendfile|residency EMFILE cachestat|sendfile EMFILE)$/.test(k)),
    [],
    `only exact completions and EMFILE: ${JSON.stringify(out.tally)}`,
  );
  const refused = kinds.filter((k) => / EMFILE/.test(k)).reduce((n, k) => n + out.tally[k], 0);
  t.ok(refused > 0, `the limit was reached (${refused} calls were refused)`);
  t.ok(out.tally['warm ok'] > 0, 'the calls within the limit completed');
  t.match(out.sf, /^(EMFILE socket intact|ok)$/, `sendFile while exhausted: ${out.sf}`);
  t.same(out.opened, [], `every descriptor returned (${out.before} before, ${out.after} after; closed, by Node itself: ${out.closed.join(', ') || 'none'})`);
  t.equal(out.again, MiB, 'new calls work afterwards');
  t.equal(out.sfAfter, 4096, 'the socket still works afterwards');
  t.end();
});
