// The binding's test-only switches (_testOnlySetFlags: forceReadFallback,
// noNowaitReads) belong to the environment that sets them. A worker that
// turns them on changes nothing for the main thread, and the main thread's
// setting never reaches a worker: each job carries its own environment's
// setting to the pool thread that runs it (the pool is shared).
//
// Native only: the portable fallback has no such switches.
import t from 'tap';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { constants } from 'node:os';
import { binding } from '../lib/core/native';
import { prepareForRead, prepareForReadSync, stats, capabilities } from '../lib/index';
import { scratchDir, makeFile } from './helpers';

const MiB = 1 << 20;
const dir = scratchDir();
const dist = join(__dirname, '..', 'dist', 'cjs');
const caps = capabilities();
// Larger than the warm-up fast path (512 KiB) and smaller than one chunk
// (8 MiB): every warm-up of it runs one chunk on the pool, even resident.
const size = 4 * MiB;
const nowaitRefused = { errno: constants.errno.EOPNOTSUPP, syscall: 'preadv2' };

interface Probe {
  warmed: number;
  warmedSync: number;
  fallbackReads: number;
  sendfileChunks: number;
  readCached: unknown;
}

/** The calls probe() makes: the package's and the binding's, as the main thread or a worker has them. */
interface Calls {
  prepareForRead(fd: number): Promise<number>;
  prepareForReadSync(fd: number): number;
  stats(): { fallbackReads: number; sendfileChunks: number };
  binding: { readCached(fd: number, buffer: Buffer, offset: number, length: number, position: number): unknown };
}

/**
 * What the calling environment's switches make of one async and one sync
 * warm-up of fd, counted by stats() (process-wide: nothing else may run
 * meanwhile), and of a readCached of its first page (resident by then).
 * The worker runs this same function, from its source.
 */
async function probe(calls: Calls, fd: number): Promise<Probe> {
  const before = calls.stats();
  const warmed = await calls.prepareForRead(fd);
  const warmedSync = calls.prepareForReadSync(fd);
  const after = calls.stats();
  return {
    warmed,
    warmedSync,
    fallbackReads: after.fallbackReads - before.fallbackReads,
    sendfileChunks: after.sendfileChunks - before.sendfileChunks,
    readCached: calls.binding.readCached(fd, Buffer.alloc(4096), 0, 4096, 0),
  };
}

function message<T>(w: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    w.once('message', (m: T & { error?: string }) => (m.error ? reject(new Error(m.error)) : resolve(m)));
    w.once('error', reject);
  });
}

t.test("a worker's test switches change nothing on the main thread, and the reverse", { skip: !caps.native && 'the fallback has no test switches' }, async (t) => {
  t.ok(fs.existsSync(join(dist, 'index.js')), 'the compiled package exists (npm run build:ts)');
  const path = makeFile(join(dir, 'flags'), size);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => {
    binding._testOnlySetFlags!({ forceReadFallback: false, noNowaitReads: false });
    fs.closeSync(fd);
  });
  const calls: Calls = { prepareForRead, prepareForReadSync, stats, binding };

  const w = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const fs = require('node:fs');
     const calls = { ...require(${JSON.stringify(join(dist, 'index.js'))}), binding: require(${JSON.stringify(join(dist, 'core', 'native.js'))}).binding };
     const { binding } = calls;
     const probe = ${probe.toString()};
     const next = () => new Promise((resolve) => parentPort.once('message', resolve));
     (async () => {
       const fd = fs.openSync(workerData.path, 'r');
       binding._testOnlySetFlags({ forceReadFallback: true, noNowaitReads: true });
       parentPort.postMessage(await probe(calls, fd));
       await next(); // the main thread probed, then turned its own switches on
       binding._testOnlySetFlags({ forceReadFallback: false, noNowaitReads: false });
       parentPort.postMessage(await probe(calls, fd));
       fs.closeSync(fd);
     })().catch((e) => parentPort.postMessage({ error: String((e && e.stack) || e) }));`,
    { eval: true, workerData: { path } },
  );
  t.teardown(() => w.terminate());

  // 1. The worker's switches on, the main thread's off.
  const workerOn = await message<Probe>(w);
  t.match(workerOn, { warmed: size, warmedSync: size, sendfileChunks: 0, readCached: nowaitRefused }, 'worker, switches on: its warm-ups read, its readCached refuses');
  t.equal(workerOn.fallbackReads, 2, 'worker: one read-fallback chunk per warm-up, async (pool thread) and sync');
  const mainOff = await probe(calls, fd);
  t.match(mainOff, { warmed: size, warmedSync: size, fallbackReads: 0, readCached: 4096 }, "main thread: the worker's switches change nothing");
  t.equal(mainOff.sendfileChunks, 2, 'main thread: both warm-ups spliced (sendfile to /dev/null)');

  // 2. The main thread's switches on, the worker's off.
  binding._testOnlySetFlags!({ forceReadFallback: true, noNowaitReads: true });
  w.postMessage('next');
  const workerOff = await message<Probe>(w);
  t.match(workerOff, { warmed: size, warmedSync: size, fallbackReads: 0, sendfileChunks: 2, readCached: 4096 }, "worker: the main thread's switches change nothing");
  const mainOn = await probe(calls, fd);
  t.match(mainOn, { warmed: size, warmedSync: size, fallbackReads: 2, sendfileChunks: 0, readCached: nowaitRefused }, 'main thread, switches on: its warm-ups read, its readCached refuses');
});
