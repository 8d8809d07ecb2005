// configure / stats / capabilities, and PAGEWARM_THREADS.
//
// On the portable fallback (capabilities().native false) there are no
// pagewarm-N threads: `threads` bounds the reads in flight on the libuv pool
// (stats().active / queued), and the native-only counters stay 0.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { configure, stats, capabilities, prepareForRead } from '../lib/index';
import { binding } from '../lib/core/native';
import { scratchDir, makeFile, threadIds, makeCold } from './helpers';

const dir = scratchDir();
const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');
const file = makeFile(join(dir, 'f'), 1 << 20);
/** Live pool threads, named pagewarm-0, pagewarm-1, ... */
const workers = (): number => threadIds('pagewarm-').length - threadIds('pagewarm-poll').length;
const caps = capabilities();
/** The documented default pool size: one per CPU, at least 2, at most 4. */
const byDefault = Math.min(4, Math.max(2, availableParallelism()));

t.test('the pool starts on first use and resizes', async (t) => {
  if (!caps.native) return fallbackPool(t);
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  await makeCold(t, fd);
  await prepareForRead(fd); // cold: a pool job
  t.equal(stats().threads, byDefault, `${byDefault} threads by default (${availableParallelism()} CPUs)`);
  t.equal(workers(), byDefault, 'as many live pagewarm-N threads');
  t.equal(threadIds('pagewarm-poll').length, 1, 'one poller thread');
  configure({ threads: 7 });
  t.equal(workers(), 7, 'grown to 7');
  configure({ threads: 2 });
  t.equal(stats().configuredThreads, 2, 'configured: 2 at once');
  // Retired threads are not joined: each exits when it wakes (see pool.h).
  for (let i = 0; i < 500 && workers() > 2; i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(workers(), 2, 'shrunk to 2 (the idle retired threads exited)');
  t.equal(stats().threads, 2, 'stats().threads counts the live threads');
  await makeCold(t, fd);
  t.equal(await prepareForRead(fd, 0, 4 << 20), 1 << 20, 'still works');
  configure({ chunkSize: 1 << 20 });
  t.equal(stats().chunkSize, 1 << 20);
  t.equal(binding.chunkSize(), 1 << 20, 'the internal chunkSize() (sendFile\'s) agrees');
  configure({ threads: 4, chunkSize: 8 << 20 });
  t.equal(workers(), 4);
  configure({});
  t.equal(stats().threads, 4, 'an empty configure changes nothing');
  t.equal(stats().configuredThreads, 4);
});

/**
 * The fallback's "pool": no thread of its own; `threads` bounds the reads in
 * flight on the libuv pool, first come first served.
 */
async function fallbackPool(t: Test): Promise<void> {
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  await makeCold(t, fd);
  t.equal(stats().threads, byDefault, `${byDefault} "threads" by default (${availableParallelism()} CPUs)`);
  const warmups = Array.from({ length: 8 }, () => prepareForRead(fd));
  t.match(stats(), { active: byDefault, queued: 8 - byDefault }, 'that many reads in flight, the rest queued');
  t.same(await Promise.all(warmups), Array(8).fill(1 << 20));
  t.match(stats(), { active: 0, queued: 0 }, 'nothing left');
  t.same(threadIds('pagewarm-'), [], 'no pagewarm-N or poller thread: the reads run on the libuv pool');
  configure({ threads: 7 });
  t.equal(stats().threads, 7, 'grown to 7');
  configure({ threads: 2 });
  t.equal(stats().threads, 2, 'shrunk to 2');
  const two = Array.from({ length: 8 }, () => prepareForRead(fd, 0, 4 << 20));
  t.match(stats(), { active: 2, queued: 6 }, 'two reads in flight, the rest queued');
  t.same(await Promise.all(two), Array(8).fill(1 << 20), 'still works');
  configure({ chunkSize: 1 << 20 });
  t.equal(stats().chunkSize, 1 << 20);
  t.equal(binding.chunkSize(), 1 << 20, 'the internal chunkSize() (sendFile\'s) agrees');
  configure({ threads: 4, chunkSize: 8 << 20 });
  t.match(stats(), { threads: 4, chunkSize: 8 << 20 });
  configure({});
  t.equal(stats().threads, 4, 'an empty configure changes nothing');
}

t.test('stats and capabilities have their documented shape', async (t) => {
  const s = stats();
  for (const key of ['warmedBytes', 'fastPathHits', 'sendfileChunks', 'fallbackReads', 'directReopens', 'inlineSends', 'queued', 'active', 'waiting', 'threads', 'configuredThreads', 'chunkSize']) {
    t.type(s[key as keyof typeof s], 'number', key);
  }
  if (caps.native) {
    t.match(capabilities(), { native: true, zeroCopySend: true, cachestat: true, fastPath: true, pageSize: 4096 });
  } else {
    t.match(capabilities(), { native: false, zeroCopySend: false, cachestat: false, fastPath: false, pageSize: 4096, fallbackReason: String });
    if (process.env.PAGEWARM_FORCE_FALLBACK === '1') t.equal(capabilities().fallbackReason, 'PAGEWARM_FORCE_FALLBACK=1');
    t.match(s, { fastPathHits: 0, sendfileChunks: 0, inlineSends: 0 }, 'the native-only counters stay 0');
    t.ok(s.fallbackReads > 0 && s.warmedBytes > 0, 'the fallback counts its reads and warmed bytes');
  }
});

t.test('PAGEWARM_THREADS sets the pool size; a bad value is ignored with a warning', async (t) => {
  t.ok(fs.existsSync(dist), 'the compiled package exists (npm run build:ts)');
  const run = (value: string) =>
    spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(dist)}).stats().configuredThreads)`], {
      env: { ...process.env, PAGEWARM_THREADS: value },
      encoding: 'utf8',
    });
  const three = run('3');
  t.equal(three.stdout.trim(), '3');
  const bad = run('lots');
  t.equal(bad.stdout.trim(), String(byDefault), 'the default stays');
  t.match(bad.stderr, /PAGEWARM_THREADS=lots ignored/);
});

t.test('the default pool size follows the CPUs the process may run on', async (t) => {
  // taskset is util-linux's, like fincore, which .ci/run installs.
  const threadsOn = (cpus: string) => {
    const env = { ...process.env };
    delete env.PAGEWARM_THREADS;
    const r = spawnSync('taskset', ['-c', cpus, process.execPath, '-e',
      `const os = require('node:os'); console.log(os.availableParallelism(), require(${JSON.stringify(dist)}).stats().configuredThreads)`],
      { env, encoding: 'utf8' });
    t.equal(r.status, 0, r.stderr);
    return r.stdout.trim().split(' ').map(Number);
  };
  t.same(threadsOn('0'), [1, 2], 'one CPU: 2 threads, so one slow read never holds the whole pool');
  const all = `0-${availableParallelism() - 1}`;
  t.same(threadsOn(all), [availableParallelism(), byDefault], `${availableParallelism()} CPUs: ${byDefault}`);
});
