// The broker example (examples/broker): produce, fetch across segments and
// byte-exact replay, for every FETCH strategy this build of pagewarm offers.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evict, capabilities } from '../lib/index';
import { Broker } from '../examples/broker/server';
import { BrokerClient } from '../examples/broker/client';
import { availableStrategies, PAGEWARM_PATHS, STRATEGIES } from '../examples/broker/strategies';
import { FrameReader, RECORD_HEADER } from '../examples/broker/protocol';

const { available, missing } = availableStrategies();

function evictDir(dir: string): void {
  for (const name of readdirSync(dir)) {
    const fd = openSync(join(dir, name), 'r');
    evict(fd);
    closeSync(fd);
  }
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

async function start(t: Test, strategy: (typeof STRATEGIES)[number], dir: string, segmentBytes: number) {
  const broker = new Broker({ dir, strategy, segmentBytes });
  const { port } = await broker.listen(0);
  const client = await BrokerClient.connect(port);
  t.teardown(async () => {
    client.destroy();
    await broker.close();
  });
  return { broker, client, port };
}

t.test('FrameReader splits frames at any chunk boundary, and can skip bodies', async (t) => {
  const frames = [Buffer.from('a'), randomBytes(100), Buffer.alloc(0), randomBytes(5000)];
  const wire = Buffer.concat(frames.map((f) => {
    const p = Buffer.alloc(4);
    p.writeUInt32BE(f.length);
    return Buffer.concat([p, f]);
  }));
  for (const step of [1, 3, 7, 64, 4099, wire.length]) {
    const got: Buffer[] = [];
    const r = new FrameReader((f) => got.push(Buffer.from(f)));
    for (let i = 0; i < wire.length; i += step) r.push(wire.subarray(i, i + step));
    t.same(got.map(sha), frames.map(sha), `chunks of ${step}`);
    const heads: [string, number][] = [];
    const skip = new FrameReader((f, len) => heads.push([f.toString('hex'), len]), undefined, 10);
    for (let i = 0; i < wire.length; i += step) skip.push(wire.subarray(i, i + step));
    t.same(heads, frames.map((f) => [f.subarray(0, 10).toString('hex'), f.length]), `skipping, chunks of ${step}`);
  }
});

t.test('strategies: which are worth benchmarking here', async (t) => {
  t.ok(available.includes('stream'), 'stream always');
  if (capabilities().zeroCopySend) t.same(available, [...STRATEGIES], 'with zero-copy sends: all of them');
  else t.same(Object.keys(missing).sort(), ['blocking', 'pagewarm'], `on the fallback the sendfile strategies copy: ${missing.pagewarm}`);
  // Every strategy is still tested below, in both modes: the bytes must be exact either way.
});

for (const strategy of STRATEGIES) {
  t.test(`broker with FETCH strategy '${strategy}'`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), `pagewarm-broker-${strategy}-`));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const segmentBytes = 64 * 1024;
    const { client, broker, port } = await start(t, strategy, dir, segmentBytes);

    // Records of many sizes, including one larger than a segment; produced pipelined.
    const sizes = [0, 1, 3, 100, 4096, 70 * 1024, 5, ...Array.from({ length: 300 }, (_, i) => (i * 7919) % 3000)];
    const records = sizes.map((n) => randomBytes(n));
    const acks = await Promise.all(records.map((r) => client.produce(r)));

    await t.test('produce: acks are in order and segments roll at the configured size', async (t) => {
      const expect: { segment: number; offset: number }[] = [];
      let seg = 0;
      let size = 0;
      for (const r of records) {
        const stored = RECORD_HEADER + r.length;
        if (size > 0 && size + stored > segmentBytes) {
          seg++;
          size = 0;
        }
        expect.push({ segment: seg, offset: size });
        size += stored;
      }
      t.same(acks, expect);
      const segs = await client.list();
      t.ok(segs.length >= 5, `${segs.length} segments`);
      for (const s of segs) {
        const onDisk = statSync(join(dir, `${String(s.id).padStart(20, '0')}.log`)).size;
        t.equal(s.size, onDisk, `segment ${s.id}: LIST size matches the file`);
        const big = acks.some((a, i) => a.segment === s.id && records[i].length + RECORD_HEADER > segmentBytes);
        if (!big) t.ok(s.size <= segmentBytes, `segment ${s.id} within ${segmentBytes}`);
      }
      t.equal(broker.stats.produced, records.length);
    });

    await t.test('fetch: raw bytes of every segment equal the files (cold), across segments, in pieces', async (t) => {
      evictDir(dir);
      const segs = await client.list();
      for (const s of segs) {
        const file = readFileSync(join(dir, `${String(s.id).padStart(20, '0')}.log`));
        const pieces: Buffer[] = [];
        for (let off = 0; off < s.size;) {
          const b = await client.fetch(s.id, off, 10_000); // not aligned to records
          t.ok(b.length > 0 && b.length <= 10_000);
          pieces.push(b);
          off += b.length;
        }
        t.equal(sha(Buffer.concat(pieces)), sha(file), `segment ${s.id} byte-exact`);
      }
      // A fetch that starts in one segment does not run into the next.
      const first = segs[0];
      const tail = await client.fetch(first.id, first.size - 10, 1 << 20);
      t.equal(tail.length, 10, 'a fetch stops at the end of its segment');
      t.equal((await client.fetch(first.id, first.size, 100)).length, 0, 'at the end: 0 bytes');
      await t.rejects(client.fetch(first.id, first.size + 1, 100), /past the end/);
      await t.rejects(client.fetch(9999, 0, 100), /no segment 9999/);
    });

    await t.test('replay: every record, byte-exact, in order (cold, and fetched in small pieces)', async (t) => {
      for (const maxBytes of [1 << 20, 1000]) {
        evictDir(dir);
        const got: Buffer[] = [];
        const where: { segment: number; offset: number }[] = [];
        for await (const r of client.records(maxBytes)) {
          got.push(Buffer.from(r.value));
          where.push({ segment: r.segment, offset: r.offset });
        }
        t.equal(got.length, records.length, `maxBytes ${maxBytes}: record count`);
        t.ok(got.every((g, i) => g.equals(records[i])), `maxBytes ${maxBytes}: every record byte-exact`);
        t.same(where, acks, `maxBytes ${maxBytes}: positions match the acks`);
      }
    });

    await t.test('a producer and two consumers at once; pipelined fetches', async (t) => {
      evictDir(dir);
      const c1 = await BrokerClient.connect(port);
      const c2 = await BrokerClient.connect(port, '127.0.0.1', { discardFetched: true });
      t.teardown(() => {
        c1.destroy();
        c2.destroy();
      });
      const segs = await client.list();
      const more = Array.from({ length: 200 }, () => randomBytes(200));
      const [acks2, counts, pieces] = await Promise.all([
        Promise.all(more.map((r) => client.produce(r))),
        Promise.all(segs.map((s) => c2.fetchCount(s.id, 0, s.size))),
        Promise.all(segs.map((s) => c1.fetch(s.id, 0, s.size))),
      ]);
      t.equal(acks2.length, 200);
      t.same(counts, segs.map((s) => s.size), 'discarding consumer counts every byte');
      t.same(pieces.map(sha), segs.map((s) => sha(readFileSync(join(dir, `${String(s.id).padStart(20, '0')}.log`)).subarray(0, s.size))), 'collecting consumer gets exact bytes');
    });

    await t.test('restart: the log reopens and appends to its last segment', async (t) => {
      const before = await client.list();
      client.destroy();
      await broker.close();
      const again = new Broker({ dir, strategy, segmentBytes });
      const { port: p2 } = await again.listen(0);
      const c = await BrokerClient.connect(p2);
      t.teardown(async () => {
        c.destroy();
        await again.close();
      });
      t.same(await c.list(), before, 'same segments');
      const last = before[before.length - 1];
      t.same(await c.produce('after restart'), { segment: last.id, offset: last.size });
      let n = 0;
      let lastValue = '';
      for await (const r of c.records()) {
        n++;
        lastValue = r.value.toString();
      }
      t.equal(n, records.length + 201);
      t.equal(lastValue, 'after restart');
    });
  });
}

// The pagewarm strategy's other FETCH paths (measured by broker-latency's
// --pagewarm-path): cold fetches in pieces and a producer at the same time.
for (const path of PAGEWARM_PATHS) {
  t.test(`pagewarm FETCH path '${path}'`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pagewarm-broker-path-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const broker = new Broker({ dir, strategy: 'pagewarm', segmentBytes: 256 * 1024, pagewarmPath: path });
    const { port } = await broker.listen(0);
    const producer = await BrokerClient.connect(port);
    const consumer = await BrokerClient.connect(port);
    t.teardown(async () => {
      producer.destroy();
      consumer.destroy();
      await broker.close();
    });
    const records = Array.from({ length: 600 }, (_, i) => randomBytes(100 + ((i * 7919) % 3000)));
    await Promise.all(records.map((r) => producer.produce(r)));
    evictDir(dir);
    const segs = await consumer.list();
    const [, pieces] = await Promise.all([
      Promise.all(Array.from({ length: 100 }, () => producer.produce(randomBytes(50)))),
      Promise.all(segs.map(async (s) => {
        const got: Buffer[] = [];
        for (let off = 0; off < s.size;) {
          const b = await consumer.fetch(s.id, off, 40_000);
          got.push(b);
          off += b.length;
        }
        // The active segment grows while this runs: its last fetch may return newer records too.
        return Buffer.concat(got).subarray(0, s.size);
      })),
    ]);
    t.same(pieces.map(sha), segs.map((s) => sha(readFileSync(join(dir, `${String(s.id).padStart(20, '0')}.log`)).subarray(0, s.size))), 'every segment byte-exact');
    let n = 0;
    for await (const r of consumer.records(1000)) if (r.value.length > 0) n++;
    t.equal(n, 700, 'replay in small pieces sees every record');
  });
}

// The benchmark built on this broker, at tiny sizes. Opt-in: it starts five
// processes and loads both cores for ~20 s, which would disturb the timing
// tests that run beside it in `npm test`.
t.test('bench/broker-latency.ts --smoke runs to the end', {
  skip: process.env.PAGEWARM_BENCH_SMOKE === '1' ? false : 'set PAGEWARM_BENCH_SMOKE=1 to run the benchmark smoke test',
  timeout: 240_000,
}, async (t) => {
  const { spawnSync } = await import('node:child_process');
  const root = join(__dirname, '..');
  // Loaded through require() from -e: tap's loaders would take a .ts main module for ESM.
  const code = `require(${JSON.stringify(join(root, 'bench', 'register.js'))});
    require(${JSON.stringify(join(root, 'bench', 'broker-latency.ts'))}).main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', code, '--', 'x', '--smoke', '--disk=unthrottled'], { cwd: root, encoding: 'utf8', timeout: 230_000 });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /broker-latency \[unthrottled\]/);
  t.match(r.stdout, /no-fetch baseline/);
  for (const s of available) t.match(r.stdout, new RegExp(`\\n${s} `), `${s} measured`);
});
