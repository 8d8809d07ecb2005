// Load: 1,000 concurrent sendFile calls to 1,000 sockets (TCP loopback),
// each with a write before and after it, receivers in the same process; then
// 1,000 concurrent sendfile calls to 1,000 Unix sockets.
//
// 1,000 connections are 2,000 descriptors here (both ends), plus a duplicate
// of each socket and each file while its send runs: the load runs in a child
// process whose RLIMIT_NOFILE soft limit is raised to the hard limit with
// `prlimit` (ulimit -n is per process), skipped below 8,192.
//
// Asserted: every call resolves { bytes, zeroCopy } (zeroCopy: true natively, false in the fallback) with its exact
// length; every receiver gets exactly head + file range + tail (sha256);
// afterwards the pool and the poller are empty and, the sockets closed,
// the descriptor count is back to its value before.
import t from 'tap';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { scratchDir, makeFile, nofileHardLimit, hasPrlimit } from './helpers';

const MiB = 1 << 20;
const dir = scratchDir();
const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');
const path = makeFile(join(dir, 'load'), 64 * MiB);

const limit = Math.min(65536, nofileHardLimit());

const script = `
const pw = require(${JSON.stringify(dist)});
const fs = require('fs'), net = require('net'), crypto = require('crypto'), path = require('path');
const count = () => fs.readdirSync('/proc/self/fd').length;
const list = () => fs.readdirSync('/proc/self/fd').map((x) => { try { return x + ' -> ' + fs.readlinkSync('/proc/self/fd/' + x); } catch { return ''; } }).filter(Boolean);
const N = 1000;
const file = fs.readFileSync(${JSON.stringify(path)});
const sha = (...parts) => { const h = crypto.createHash('sha256'); for (const p of parts) h.update(p); return h.digest('hex'); };

async function run(kind, useSendfile) {
  const fdsBefore = count();
  const listBefore = list();
  const received = new Map();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    const h = crypto.createHash('sha256');
    let id = null, bytes = 0, first = Buffer.alloc(0);
    s.on('data', (d) => {
      if (id === null) { first = Buffer.concat([first, d]); const nl = first.indexOf(10); if (nl < 0) return; id = Number(first.subarray(0, nl)); d = first; }
      h.update(d); bytes += d.length;
    });
    s.on('end', () => { received.get(id)({ bytes, sha: h.digest('hex') }); s.end(); });
    s.on('error', () => {});
  });
  const where = kind === 'unix' ? path.join(${JSON.stringify(dir)}, 'load-' + process.pid + '.sock') : 0;
  await new Promise((r) => kind === 'unix' ? server.listen(where, r) : server.listen(0, '127.0.0.1', r));
  const target = kind === 'unix' ? { path: where } : { port: server.address().port, host: '127.0.0.1' };
  const clients = [];
  for (let i = 0; i < N; i++) {
    const c = net.connect(target);
    c.on('error', () => {});
    clients.push(new Promise((r) => c.once('connect', () => r(c))));
    // A little at a time: the listen backlog is finite (a Unix socket refuses with EAGAIN beyond it).
    if (i % 100 === 99) {
      await Promise.all(clients.slice(i - 99));
      while (accepted < i + 1) await new Promise((r) => setImmediate(r));
    }
  }
  const sockets = await Promise.all(clients);
  const fd = fs.openSync(${JSON.stringify(path)}, 'r');
  const fdsConnected = count();
  const t0 = Date.now();
  const expected = [];
  const sends = sockets.map((c, i) => {
    const offset = (i * 65537) % (48 << 20);
    const length = (128 << 10) + i * 97;
    const head = Buffer.from(i + '\\n');
    const tail = Buffer.from('tail ' + i);
    expected.push({ bytes: head.length + length + tail.length, sha: sha(head, file.subarray(offset, offset + length), tail), length });
    received.set(i, null);
    const got = new Promise((r) => received.set(i, r));
    let p;
    if (useSendfile) {
      c.write(head);
      p = new Promise((r) => c.write('', r)).then(() => pw.transferTo(c._handle.fd, fd, offset, length)).then((n) => ({ bytes: n, zeroCopy: pw.capabilities().zeroCopySend }));
      p = p.then((r) => { c.end(tail); return r; });
    } else {
      c.write(head);
      p = pw.sendFile(c, fd, { offset, length });
      c.end(tail);
    }
    return Promise.all([p, got]);
  });
  const peakFds = count();
  const results = await Promise.all(sends);
  const ms = Date.now() - t0;
  const wrong = [];
  results.forEach(([r, got], i) => {
    if (r.bytes !== expected[i].length || r.zeroCopy !== pw.capabilities().zeroCopySend) wrong.push(i + ': resolved ' + JSON.stringify(r));
    if (got.bytes !== expected[i].bytes || got.sha !== expected[i].sha) wrong.push(i + ': received ' + got.bytes + ' bytes, want ' + expected[i].bytes);
  });
  for (let i = 0; i < 100 && pw.stats().queued + pw.stats().active + pw.stats().waiting > 0; i++) await new Promise((r) => setTimeout(r, 20));
  const st = pw.stats();
  fs.closeSync(fd);
  for (const c of sockets) c.destroy();
  await new Promise((r) => server.close(r));
  await new Promise((r) => setTimeout(r, 100));
  return { kind, api: useSendfile ? 'sendfile' : 'sendFile', ms, wrong: wrong.slice(0, 5), wrongCount: wrong.length, fdsBefore, fdsConnected, peakFds, fdsAfter: count(), extra: list().filter((l) => !listBefore.includes(l)),
    pending: st.queued + st.active + st.waiting, mib: expected.reduce((a, e) => a + e.bytes, 0) / 1048576 };
}

(async () => {
  // Before counting: start the pool and its poller (the first warm-up that
  // reads from disk), and let libuv open its reserve /dev/null (first listen).
  const fd0 = fs.openSync(${JSON.stringify(path)}, 'r');
  for (let i = 0; i < 5 && pw.stats().sendfileChunks === 0; i++) {
    pw.evict(fd0);
    await pw.prepareForRead(fd0, 0, 4096);
  }
  fs.closeSync(fd0);
  const dummy = net.createServer();
  await new Promise((r) => dummy.listen(0, '127.0.0.1', r));
  await new Promise((r) => dummy.close(r));
  const baseline = count();
  const out = [];
  out.push(await run('tcp', false));
  out.push(await run('unix', true));
  console.log(JSON.stringify({ limit: Number(/Max open files\\s+(\\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))[1]), baseline, after: count(), out }));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
`;

t.test(
  '1,000 concurrent sendFile calls to 1,000 TCP sockets, 1,000 sendfile calls to 1,000 Unix sockets',
  { skip: (!hasPrlimit && 'prlimit (util-linux) is not installed') || (limit < 8192 && `RLIMIT_NOFILE hard limit ${limit} < 8,192`) },
  (t) => {
    if (process.env.PAGEWARM_LOAD_DUMP) fs.writeFileSync(process.env.PAGEWARM_LOAD_DUMP, script);
    const r = spawnSync('prlimit', [`--nofile=${limit}:${limit}`, process.execPath, '-e', script], { encoding: 'utf8', timeout: 110_000 });
    t.equal(r.signal, null, 'no crash, no hang');
    t.equal(r.status, 0, r.stderr || 'exited cleanly');
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
    t.comment(`RLIMIT_NOFILE ${res.limit}`);
    for (const o of res.out) {
      t.same(o.wrong, [], `${o.kind} ${o.api}: every call resolved exact and zero-copy, every receiver got head + range + tail (${o.wrongCount} wrong)`);
      t.equal(o.pending, 0, `${o.kind} ${o.api}: nothing left in the pool or the poller`);
      t.same(o.extra, [], `${o.kind} ${o.api}: no descriptor left once the sockets closed (${o.fdsBefore} before, ${o.fdsAfter} after, ${o.fdsConnected} connected, ${o.peakFds} while the sends started)`);
      t.comment(`${o.kind} ${o.api}: 1,000 connections, ${o.mib.toFixed(0)} MiB in ${o.ms} ms`);
    }
    t.equal(res.after, res.baseline, `every socket closed: descriptors back to ${res.baseline}`);
    t.end();
  },
);
