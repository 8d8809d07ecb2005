// Property: any sequence of socket.write() and sendFile() calls on one TCP or
// Unix domain socket, issued back to back or with random pauses, arrives as
// exactly the concatenation of the writes and the file ranges in call order
// (sha256 of the whole stream); every sendFile resolves with the bytes of its
// range that exist (short at end of file, 0 past it) and zeroCopy: true
// (false in the portable fallback, which copies).
// Also: random transferTo(outFd, ...) ranges arrive byte-exact.
//
// Runs: 60 random sequences of up to 8 calls, 60 sendfile ranges (about 20 s here).
// Reproduce a failure with PAGEWARM_PROP_SEED=<seed printed on failure>.
import t from 'tap';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { open } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { sendFile, transferTo, configure, evict, stats, capabilities } from '../lib/index';
import { scratchDir, fdList, fdsAdded, settledFdList, startPagewarm } from './helpers';

const KiB = 1024;
const MiB = 1 << 20;
const PAGE = capabilities().pageSize;
const dir = scratchDir();
const seed = process.env.PAGEWARM_PROP_SEED ? Number(process.env.PAGEWARM_PROP_SEED) : undefined;

const SIZE = 6 * MiB + 777;
const content = randomBytes(SIZE);
const path = join(dir, 'file');
fs.writeFileSync(path, content);
const fd = fs.openSync(path, 'r');
fs.fsyncSync(fd);
t.teardown(() => fs.closeSync(fd));

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

type Kind = 'tcp' | 'unix';
interface Pair {
  client: net.Socket;
  /** Everything the server side receives, until the client ends. */
  received: Promise<Buffer>;
  close(): Promise<void>;
}

let sockets = 0;
async function connectPair(kind: Kind): Promise<Pair> {
  let resolveData!: (b: Buffer) => void;
  const received = new Promise<Buffer>((resolve) => (resolveData = resolve));
  const server = net.createServer((s) => {
    const parts: Buffer[] = [];
    s.on('data', (d) => parts.push(d));
    s.on('end', () => {
      resolveData(Buffer.concat(parts));
      s.end();
    });
    s.on('error', () => resolveData(Buffer.concat(parts)));
  });
  const address = kind === 'unix' ? join(dir, `s${sockets++}.sock`) : 0;
  await new Promise<void>((resolve) => (kind === 'unix' ? server.listen(address, resolve) : server.listen(0, '127.0.0.1', resolve)));
  const client =
    kind === 'unix' ? net.connect(address as string) : net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  await new Promise((resolve) => client.once('connect', resolve));
  client.resume(); // the server echoes nothing; drain anyway
  return {
    client,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        client.destroy();
        server.close(() => resolve());
      }),
  };
}

type Op =
  | { write: number } // bytes
  | { send: { offset: number; length?: number; warm: boolean; dropBehind: boolean; as: 'fd' | 'path' | 'handle' } };
type Pause = 'none' | 'microtask' | 'immediate' | 'settle';

const sendArb = fc.record(
  {
    offset: fc.oneof(
      { weight: 5, arbitrary: fc.integer({ min: 0, max: SIZE }) },
      { weight: 1, arbitrary: fc.constantFrom(0, SIZE - 1, SIZE, SIZE + 5) },
    ),
    length: fc.oneof(
      { weight: 1, arbitrary: fc.constant(undefined) },
      { weight: 4, arbitrary: fc.integer({ min: 0, max: 512 * KiB }) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 * MiB }) },
      { weight: 1, arbitrary: fc.constantFrom(0, 1, PAGE, Number.MAX_SAFE_INTEGER) },
    ),
    warm: fc.boolean(),
    dropBehind: fc.boolean(),
    as: fc.constantFrom('fd' as const, 'path' as const, 'handle' as const),
  },
  { requiredKeys: ['offset', 'warm', 'dropBehind', 'as'] },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ write: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 256 * KiB })) }),
  fc.record({ send: sendArb }),
);
const caseArb = fc.record({
  kind: fc.constantFrom('tcp' as const, 'unix' as const),
  chunkSize: fc.constantFrom(64 * KiB, 256 * KiB, MiB, 8 * MiB),
  evictFirst: fc.boolean(),
  steps: fc.array(fc.record({ op: opArb, pause: fc.constantFrom<Pause>('none', 'none', 'microtask', 'immediate', 'settle') }), {
    minLength: 1,
    maxLength: 8,
  }),
});

function slice(s: { offset: number; length?: number }): Buffer {
  const end = s.length === undefined ? SIZE : Math.min(SIZE, s.offset + s.length);
  return s.offset >= SIZE ? Buffer.alloc(0) : content.subarray(s.offset, end);
}

t.test('writes and sendFile calls arrive in call order, byte-exact (sha256)', async (t) => {
  t.teardown(() => configure({ chunkSize: 8 * MiB }));
  // Start the pool, /dev/null and the poller before counting fds.
  await startPagewarm(dir);
  const warmup = await connectPair('tcp');
  await sendFile(warmup.client, fd, { length: PAGE });
  warmup.client.end();
  await warmup.received;
  await warmup.close();
  const fdsBefore = await settledFdList();
  let cases = 0;
  let fileBytes = 0;
  let calls = 0;
  await fc.assert(
    fc.asyncProperty(caseArb, async ({ kind, chunkSize, evictFirst, steps }) => {
      configure({ chunkSize });
      if (evictFirst) evict(fd);
      const pair = await connectPair(kind);
      const expected: Buffer[] = [];
      const sends: Array<Promise<void>> = [];
      const handles: Array<Promise<unknown>> = [];
      let fill = 0;
      try {
        for (const { op, pause } of steps) {
          let p: Promise<void> = Promise.resolve();
          if ('write' in op) {
            const buf = Buffer.alloc(op.write, 0x41 + (fill++ % 26));
            expected.push(buf);
            pair.client.write(buf);
          } else {
            const s = op.send;
            const want = slice(s);
            expected.push(want);
            const opts = { offset: s.offset, length: s.length, warm: s.warm, dropBehind: s.dropBehind };
            let file: number | string | Awaited<ReturnType<typeof open>> = fd;
            if (s.as === 'path') file = path;
            if (s.as === 'handle') {
              // Opened synchronously enough: the write order is fixed when sendFile is called.
              const h = await open(path, 'r');
              file = h;
              handles.push(Promise.resolve(h));
            }
            calls++;
            p = sendFile(pair.client, file, opts).then((r) => {
              if (r.bytes !== want.length) throw new Error(`sendFile ${JSON.stringify(s)} resolved ${r.bytes}, want ${want.length}`);
              if (r.zeroCopy !== capabilities().zeroCopySend) throw new Error(`zeroCopy ${r.zeroCopy} on a plain socket (native: ${capabilities().native})`);
            });
            sends.push(p);
          }
          if (pause === 'microtask') await Promise.resolve();
          else if (pause === 'immediate') await new Promise((r) => setImmediate(r));
          else if (pause === 'settle') await p;
        }
        await Promise.all(sends);
        pair.client.end();
        const got = await pair.received;
        const want = Buffer.concat(expected);
        if (got.length !== want.length || sha(got) !== sha(want)) {
          let at = 0;
          while (at < Math.min(got.length, want.length) && got[at] === want[at]) at++;
          throw new Error(`stream differs: got ${got.length} bytes, want ${want.length}; first difference at byte ${at}`);
        }
        fileBytes += want.length;
        cases++;
      } finally {
        for (const h of handles) await ((await h) as { close(): Promise<void> }).close();
        await pair.close();
      }
    }),
    { numRuns: process.env.PAGEWARM_ASAN === '1' ? 25 : 60, seed, verbose: 1 },
  );
  t.comment(`${cases} sequences, ${calls} sendFile calls, ${(fileBytes / MiB).toFixed(1)} MiB checked`);
  for (let i = 0; i < 50 && stats().queued + stats().active + stats().waiting > 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.equal(stats().queued + stats().active + stats().waiting, 0, 'nothing left in the pool or the poller');
  t.same(fdsAdded(fdsBefore, fdList()), [], 'no descriptor leaked');
});

t.test('transferTo(outFd): random ranges arrive byte-exact over TCP and Unix sockets', async (t) => {
  t.teardown(() => configure({ chunkSize: 8 * MiB }));
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<Kind>('tcp', 'unix'),
      fc.integer({ min: 0, max: SIZE + 10 }),
      fc.integer({ min: 0, max: 4 * MiB }),
      fc.constantFrom(4 * KiB, 64 * KiB, MiB),
      async (kind, offset, length, chunkSize) => {
        configure({ chunkSize });
        const pair = await connectPair(kind);
        try {
          const outFd = (pair.client as unknown as { _handle: { fd: number } })._handle.fd;
          const n = await transferTo(outFd, fd, offset, length);
          const want = slice({ offset, length });
          if (n !== want.length) throw new Error(`sendfile resolved ${n}, want ${want.length}`);
          pair.client.end();
          const got = await pair.received;
          if (sha(got) !== sha(want)) throw new Error(`bytes differ (${got.length} received, ${want.length} wanted)`);
        } finally {
          await pair.close();
        }
      },
    ),
    { numRuns: process.env.PAGEWARM_ASAN === '1' ? 25 : 60, seed, verbose: 1 },
  );
  t.pass('every range arrived intact');
});
