// configure / stats / capabilities, and PAGEWARM_THREADS.
import t from 'tap';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { configure, stats, capabilities, prepareForRead, evict } from '../lib/index';
import { scratchDir, makeFile, threadIds } from './helpers';

const dir = scratchDir();
const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');
const file = makeFile(join(dir, 'f'), 1 << 20);
/** Live pool threads, named pagewarm-0, pagewarm-1, ... */
const workers = (): number => threadIds('pagewarm-').length - threadIds('pagewarm-poll').length;

t.test('the pool starts on first use and resizes', async (t) => {
  const fd = fs.openSync(file, 'r');
  t.teardown(() => fs.closeSync(fd));
  evict(fd);
  await prepareForRead(fd); // cold: a pool job
  t.equal(stats().threads, 4, 'four threads by default');
  t.equal(workers(), 4, 'four live pagewarm-N threads');
  t.equal(threadIds('pagewarm-poll').length, 1, 'one poller thread');
  configure({ threads: 7 });
  t.equal(workers(), 7, 'grown to 7');
  configure({ threads: 2 });
  t.equal(workers(), 2, 'shrunk to 2 (retired threads joined)');
  t.equal(stats().threads, 2);
  evict(fd);
  t.equal(await prepareForRead(fd, 0, 4 << 20), 1 << 20, 'still works');
  configure({ chunkSize: 1 << 20 });
  t.equal(stats().chunkSize, 1 << 20);
  configure({ threads: 4, chunkSize: 8 << 20 });
  t.equal(workers(), 4);
  configure({});
  t.equal(stats().threads, 4, 'an empty configure changes nothing');
});

t.test('stats and capabilities have their documented shape', async (t) => {
  const s = stats();
  for (const key of ['warmedBytes', 'fastPathHits', 'residentSkips', 'sendfileChunks', 'fallbackReads', 'directReopens', 'queued', 'active', 'waiting', 'threads', 'chunkSize']) {
    t.type(s[key as keyof typeof s], 'number', key);
  }
  t.match(capabilities(), { native: true, zeroCopySend: true, cachestat: true, fastPath: true, pageSize: 4096 });
});

t.test('PAGEWARM_THREADS sets the pool size; a bad value is ignored with a warning', async (t) => {
  t.ok(fs.existsSync(dist), 'the compiled package exists (npm run build:ts)');
  const run = (value: string) =>
    spawnSync(process.execPath, ['-e', `console.log(require(${JSON.stringify(dist)}).stats().threads)`], {
      env: { ...process.env, PAGEWARM_THREADS: value },
      encoding: 'utf8',
    });
  const two = run('2');
  t.equal(two.stdout.trim(), '2');
  const bad = run('lots');
  t.equal(bad.stdout.trim(), '4', 'the default stays');
  t.match(bad.stderr, /PAGEWARM_THREADS=lots ignored/);
});
