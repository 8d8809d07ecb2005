// worker_threads: the addon is context-aware, runs in many threads at once,
// and survives workers terminated with work in flight and processes exiting
// with work in flight: no crash, no hang, no leaked descriptor.
//
// On the portable fallback (capabilities().native false) residency is
// { source: 'unknown' } and evict a no-op: files start cold through makeCold and
// residency is judged by fincore.
import t from 'tap';
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { prepareForRead, stats, capabilities } from '../lib/index';
import { scratchDir, makeFile, openFdCount, warmedWhole, startPagewarm, makeCold } from './helpers';

const MiB = 1 << 20;
const dir = scratchDir();
const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');
const caps = capabilities();
t.ok(fs.existsSync(dist), 'the compiled package exists (npm run build:ts)');

/** Runs `body` (CommonJS source, with `pw`, `fs` and `workerData` in scope) in a worker. */
function worker(body: string, workerData: unknown): Worker {
  const source = `
    const { parentPort, workerData } = require('node:worker_threads');
    const fs = require('node:fs');
    const pw = require(${JSON.stringify(dist)});
    (async () => { ${body} })().catch((e) => parentPort.postMessage({ error: String(e && e.stack || e) }));`;
  return new Worker(source, { eval: true, workerData });
}

function message<T>(w: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
}

t.test('4 workers warm concurrently, sync and async, alongside the main thread', async (t) => {
  const files = [0, 1, 2, 3, 4].map((i) => makeFile(join(dir, `w${i}`), (16 + i) * MiB));
  for (const f of files) await makeCold(t, f);
  const workers = files.slice(0, 4).map((path, i) =>
    worker(
      `const fd = fs.openSync(workerData.path, 'r');
       const warmed = workerData.sync ? pw.prepareForReadSync(fd) : await pw.prepareForRead(fd);
       const r = pw.residencySync(fd);
       fs.closeSync(fd);
       parentPort.postMessage({ warmed, resident: r.residentPages, pages: r.pages, source: r.source });`,
      { path, sync: i % 2 === 0 },
    ),
  );
  const mainFd = fs.openSync(files[4]!, 'r');
  // Each file is judged the moment its warm-up is reported done, by
  // warmedWhole (resident, or reclaimed since: this VM reclaims idle page
  // cache in the background).
  const judged = <T>(p: Promise<T>, file: string): Promise<[T, { whole: boolean; counts: string }]> =>
    p.then((v) => [v, warmedWhole(file)]);
  const [[mainWarmed, mainFincore], ...results] = await Promise.all([
    judged(prepareForRead(mainFd), files[4]!),
    ...workers.map((w, i) => judged(message<Record<string, unknown>>(w), files[i]!)),
  ]);
  fs.closeSync(mainFd);
  t.equal(mainWarmed, 20 * MiB, 'the main thread warmed its file meanwhile');
  results.forEach(([r, fincore], i) => {
    t.notOk(r.error, `worker ${i} ran without error`);
    t.equal(r.warmed, (16 + i) * MiB, `worker ${i} (${i % 2 === 0 ? 'sync' : 'async'}) warmed its file`);
    if (!caps.native) t.match(r, { source: 'unknown', resident: null }, `worker ${i}: residency unknown (fallback)`);
    t.ok(fincore.whole, `worker ${i}: resident: ${fincore.counts}`);
  });
  t.ok(mainFincore.whole, `the main thread's file: resident: ${mainFincore.counts}`);
  await Promise.all(workers.map((w) => w.terminate()));
});

t.test('a worker terminated with warm-ups in flight, 20 times in a row', async (t) => {
  const path = makeFile(join(dir, 'busy'), 128 * MiB);
  const mainFile = makeFile(join(dir, 'main'), 4 * MiB);
  const mainFd = fs.openSync(mainFile, 'r');
  t.teardown(() => fs.closeSync(mainFd));
  t.ok(await startPagewarm(dir), 'pool and /dev/null open before descriptors are counted');
  await prepareForRead(mainFd);
  const before = openFdCount();
  for (let round = 0; round < 20; round++) {
    await makeCold(t, path);
    const w = worker(
      `const fd = fs.openSync(workerData.path, 'r');
       pw.configure({ chunkSize: 1 << 20 });
       for (let i = 0; i < 16; i++) pw.prepareForRead(fd, i * (8 << 20), 8 << 20).catch(() => {});
       pw.residency(fd).catch(() => {});
       fs.closeSync(fd); // the operations hold their own duplicates
       parentPort.postMessage({ started: true });
       await new Promise(() => setInterval(() => {}, 1000));`,
      { path },
    );
    const m = await message<{ started?: boolean; error?: string }>(w);
    t.notOk(m.error, m.error ?? `round ${round}: warm-ups started`);
    if (round % 2) await new Promise((resolve) => setTimeout(resolve, 2)); // sometimes mid-chunk
    const code = await w.terminate();
    t.equal(code, 1, `round ${round}: terminated`);
    await makeCold(t, mainFd);
    t.equal(await prepareForRead(mainFd), 4 * MiB, `round ${round}: the main thread keeps working`);
  }
  // Jobs of terminated workers are cancelled at their next slice and freed.
  for (let i = 0; i < 100 && stats().queued + stats().active > 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(stats().queued + stats().active, 0, 'no job left behind');
  t.equal(openFdCount(), before, 'no descriptor leaked');
  t.ok(warmedWhole(mainFile).whole, `the main thread's file is resident: ${warmedWhole(mainFile).counts}`);
});

t.test('processes exiting with warm-ups in flight exit promptly and cleanly', async (t) => {
  const path = makeFile(join(dir, 'exit'), 128 * MiB);
  const cases: Array<[string, string, number]> = [
    ['process.exit() with warm-ups in flight', `for (let i = 0; i < 8; i++) pw.prepareForRead(fd, i << 24, 1 << 24); process.exit(7);`, 7],
    ['a natural exit waits for them', `Promise.all([0,1,2,3].map((i) => pw.prepareForRead(fd, i << 25, 1 << 25))).then((n) => { console.log('warmed', n.reduce((a, b) => a + b)); });`, 0],
    [
      'process.exit() while a worker has warm-ups in flight',
      `const { Worker } = require('node:worker_threads');
       const w = new Worker(\`const pw = require(${JSON.stringify(dist)}); const fd = require('fs').openSync(${JSON.stringify(path)}, 'r'); for (let i = 0; i < 8; i++) pw.prepareForRead(fd, i << 24, 1 << 24); require('worker_threads').parentPort.postMessage(1);\`, { eval: true });
       w.once('message', () => process.exit(3));`,
      3,
    ],
  ];
  for (const [name, body, expected] of cases) {
    await makeCold(t, path);
    const script = `const pw = require(${JSON.stringify(dist)}); const fd = require('fs').openSync(${JSON.stringify(path)}, 'r'); ${body}`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
    t.equal(r.signal, null, `${name}: no signal (no crash, no hang)`);
    t.equal(r.status, expected, `${name}: exit code ${expected}`);
    t.equal(r.stderr, '', `${name}: nothing on stderr`);
    if (expected === 0) t.match(r.stdout, `warmed ${128 * MiB}`, 'the warm-ups completed before exit');
  }
});

t.test('many workers loading and unloading the addon at once', async (t) => {
  const path = makeFile(join(dir, 'churn'), 8 * MiB);
  for (let round = 0; round < 5; round++) {
    const ws = Array.from({ length: 6 }, () =>
      worker(
        `const fd = fs.openSync(workerData.path, 'r');
         const n = await pw.prepareForRead(fd);
         fs.closeSync(fd);
         parentPort.postMessage({ n, threads: pw.stats().threads });`,
        { path },
      ),
    );
    const results = await Promise.all(ws.map((w) => message<{ n: number; error?: string }>(w)));
    for (const r of results) t.equal(r.n, 8 * MiB, r.error ?? 'warmed in a worker');
    await Promise.all(ws.map((w) => w.terminate()));
  }
});
