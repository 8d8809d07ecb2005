// sendFileResponse/serveFile under aborts, shared signals, many responses
// on one connection, and middleware that keeps the chunks it is given.
import t from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { serveFile, sendFileResponse, closeServeFileCache, capabilities } from '../lib/index';
import { sendRange } from '../lib/send/transfer';
import { scratch, randomFile, MiB, KiB } from './send-helpers';

t.setTimeout(120_000);

const base = fs.realpathSync(scratch('pagewarm-httpabort-'));
const BIG = 8 * MiB;
const big = randomFile(join(base, 'big.bin'), BIG);
const HUGE = 32 * MiB;
const huge = randomFile(join(base, 'huge.bin'), HUGE);
for (let i = 0; i < 5; i++) fs.writeFileSync(join(base, `small-${i}.txt`), `small file ${i}\n`.repeat(i + 1));

// Every MaxListenersExceededWarning this process emits.
const leakWarnings: string[] = [];
process.on('warning', (w) => {
  if (w.name === 'MaxListenersExceededWarning') leakWarnings.push(w.message);
});
/** Warnings are emitted on a later tick: let them arrive. */
const settleWarnings = (): Promise<void> => new Promise((r) => setImmediate(() => setImmediate(r)));

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
let handler: Handler = (_req, res) => res.end();
const server = http.createServer((req, res) => handler(req, res));
let port = 0;
t.before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
t.teardown(() => {
  server.closeAllConnections();
  server.close();
  closeServeFileCache();
});

/** Settles with the promise, or rejects after `ms` (turns a hang into a failure; never the thing judged). */
function orHang<T>(p: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`hung: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A raw connection's bytes, collected. */
function connect(): Promise<{ socket: net.Socket; data: () => Buffer; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1');
    const closed = new Promise<void>((r) => socket.on('close', () => r()));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, data: () => Buffer.concat(chunks), closed }));
    socket.once('error', reject);
  });
}

t.test('an abort right after the call: nothing sent, AbortError with bytesSent 0', async (t) => {
  for (const wrapped of [false, true]) {
    let outcome: Promise<unknown> | undefined;
    let headersSent: boolean | undefined;
    handler = (_req, res) => {
      if (wrapped) {
        const write = res.write.bind(res) as (c: Buffer) => boolean;
        res.write = ((c: Buffer) => write(c)) as typeof res.write;
      }
      const ac = new AbortController();
      outcome = sendFileResponse(res, big, { signal: ac.signal }).then(
        (r) => ({ resolved: r }),
        (err: Error & { bytesSent?: number }) => {
          headersSent = res.headersSent;
          // The response is still the caller's to answer.
          res.writeHead(503).end('aborted\n');
          return { name: err.name, bytesSent: err.bytesSent };
        },
      );
      ac.abort();
    };
    const client = await connect();
    client.socket.write('GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await orHang(client.closed, 'the connection');
    t.same(await outcome, { name: 'AbortError', bytesSent: 0 }, `wrapped ${wrapped}: rejected, nothing sent`);
    t.equal(headersSent, false, `wrapped ${wrapped}: no status line was written`);
    const text = client.data().toString('latin1');
    t.match(text, /^HTTP\/1\.1 503 /, `wrapped ${wrapped}: the caller answered instead`);
    t.ok(client.data().length < 4096, `wrapped ${wrapped}: no file body reached the client`);
  }
});

t.test('an abort while a pipelined response waits for its connection', async (t) => {
  // The first response stays open until the second settles; the second is
  // aborted while it waits behind the first.
  let releaseFirst!: () => void;
  const firstHeld = new Promise<void>((r) => (releaseFirst = r));
  let firstEnded = false;
  let second: Promise<unknown> | undefined;
  handler = (req, res) => {
    if (req.url === '/first') {
      res.writeHead(200, { 'content-length': '6' });
      res.write('first');
      void firstHeld.then(() => {
        firstEnded = true;
        res.end('\n');
      });
      return;
    }
    const ac = new AbortController();
    second = sendFileResponse(res, big, { signal: ac.signal }).then(
      () => ({ resolved: true, firstEnded }),
      (err: Error & { bytesSent?: number }) => ({ name: err.name, bytesSent: err.bytesSent, firstEnded, headersSent: res.headersSent }),
    );
    // Abort once the send waits for the connection (listens for its 'socket').
    const poll = (): void => {
      if (res.listenerCount('socket') > 0) ac.abort();
      else setImmediate(poll);
    };
    poll();
  };
  const client = await connect();
  client.socket.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n');
  while (!second) await new Promise((r) => setImmediate(r));
  const outcome = await orHang(second.finally(releaseFirst), 'the second response');
  t.same(outcome, { name: 'AbortError', bytesSent: 0, firstEnded: false, headersSent: false },
    'rejected while still waiting, before the first response ended');
  client.socket.destroy();
});

t.test('an abort while the copying body waits for drain: AbortError, bytesSent exact', async (t) => {
  let handed = 0;
  let outcome: Promise<unknown> | undefined;
  const ac = new AbortController();
  handler = (_req, res) => {
    const held: Buffer[] = [];
    // A middleware whose buffer is full after the first chunk (as a
    // compressor's can be): it says "wait for 'drain'", which it will only
    // emit once its consumer reads, and this client never does.
    res.write = ((c: Buffer) => {
      handed += c.length;
      held.push(c);
      setImmediate(() => ac.abort()); // the body now waits for a 'drain' that does not come
      return false;
    }) as typeof res.write;
    outcome = sendFileResponse(res, big, { signal: ac.signal }).then(
      () => ({ resolved: true }),
      (err: Error & { bytesSent?: number }) => ({ name: err.name, bytesSent: err.bytesSent, destroyed: res.destroyed }),
    );
  };
  const client = await connect();
  client.socket.pause(); // never reads: the response cannot drain
  client.socket.write('GET /big HTTP/1.1\r\nHost: x\r\n\r\n');
  while (!outcome) await new Promise((r) => setImmediate(r));
  const r = await orHang(outcome, 'the aborted body');
  t.same(r, { name: 'AbortError', bytesSent: handed, destroyed: true }, 'rejected with the bytes handed to res.write()');
  t.ok(handed > 0 && handed < BIG, 'part of the body was written before the abort');
  t.equal(handed, 256 * KiB, 'one piece, the one before the wait');
  client.socket.destroy();
});

t.test('one signal shared by many concurrent responses: no listener pile-up', async (t) => {
  const N = 12;
  const ac = new AbortController(); // say, the server's shutdown signal
  const results: Array<Promise<{ bytes: number }>> = [];
  handler = (_req, res) => {
    results.push(sendFileResponse(res, huge, { signal: ac.signal }));
  };
  const before = leakWarnings.length;
  // Clients that read headers, then nothing, until every body is in flight.
  const responses: http.IncomingMessage[] = [];
  const received: number[] = [];
  const done: Array<Promise<void>> = [];
  await Promise.all(
    Array.from({ length: N }, (_, i) => new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: `/huge-${i}`, agent: false }, (res) => {
        res.pause();
        responses.push(res);
        received[i] = 0;
        done.push(new Promise((r) => res.on('end', () => r())));
        res.on('data', (c: Buffer) => (received[i] += c.length));
        resolve();
      }).on('error', reject);
    })),
  );
  await settleWarnings();
  t.same(leakWarnings.slice(before), [], `${N} responses in flight on one signal: no MaxListenersExceededWarning`);
  for (const res of responses) res.resume();
  await orHang(Promise.all(done), 'the bodies');
  const sent = await Promise.all(results);
  t.same(sent.map((r) => r.bytes), Array(N).fill(HUGE), 'every body sent whole');
  t.same(received, Array(N).fill(HUGE), 'and received whole');
  await settleWarnings();
  t.same(leakWarnings.slice(before), [], 'still none after');
});

t.test('many pipelined keep-alive requests on one connection: no listener pile-up', async (t) => {
  const before = leakWarnings.length;
  const ac = new AbortController();
  let answered = 0;
  handler = (req, res) => {
    const url = req.url ?? '/';
    const done = url.startsWith('/send/')
      ? sendFileResponse(res, join(base, `small-${url.slice(6)}.txt`), { signal: ac.signal })
      : serveFile(req, res, url, { root: base });
    void done.then(() => answered++);
  };
  const urls: string[] = [];
  for (let i = 0; i < 40; i++) {
    // Files from the open-file cache, error responses (404, 403 dotfile-free
    // traversal), and sendFileResponse with a shared signal.
    urls.push(i % 4 === 0 ? `/small-${i % 5}.txt` : i % 4 === 1 ? `/missing-${i}.txt` : i % 4 === 2 ? '/../etc/passwd' : `/send/${i % 5}`);
  }
  const client = await connect();
  client.socket.write(urls.map((u) => `GET ${u} HTTP/1.1\r\nHost: x\r\n\r\n`).join('') + 'GET /small-0.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await orHang(client.closed, 'the connection');
  const statuses = [...client.data().toString('latin1').matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => Number(m[1]));
  const expected = urls.map((u) => (u.startsWith('/missing') ? 404 : u.startsWith('/..') ? 403 : 200));
  t.same(statuses, [...expected, 200], 'every response, in order');
  t.equal(answered, urls.length + 1, 'every call settled');
  await settleWarnings();
  t.same(leakWarnings.slice(before), [], 'no MaxListenersExceededWarning');
});

t.test('a wrapped response that keeps the chunk it was given and calls back early', async (t) => {
  // Two resident files above the pooled-slab threshold, within the fast path's limit.
  const a = join(base, 'fast-a.bin');
  const b = join(base, 'fast-b.bin');
  fs.writeFileSync(a, Buffer.alloc(64 * KiB, 'a'));
  fs.writeFileSync(b, Buffer.alloc(64 * KiB, 'b'));
  fs.readFileSync(a);
  fs.readFileSync(b);
  closeServeFileCache();
  const kept: Buffer[] = [];
  let flush: (() => void) | undefined;
  handler = (req, res) => {
    if (req.url === '/fast-a.bin') {
      // Middleware that buffers: it keeps the chunks it is given (not
      // copies), says "written" at once, and sends them later (as a
      // buffering compressor might).
      const end = res.end.bind(res) as (chunk?: Buffer) => http.ServerResponse;
      const callbackOf = (args: unknown[]): (() => void) | undefined => args.find((x) => typeof x === 'function') as (() => void) | undefined;
      res.write = ((chunk: unknown, ...rest: unknown[]) => {
        if (Buffer.isBuffer(chunk)) kept.push(chunk);
        callbackOf(rest)?.();
        return true;
      }) as typeof res.write;
      res.end = ((...args: unknown[]) => {
        if (Buffer.isBuffer(args[0])) kept.push(args[0]);
        flush = () => end(Buffer.concat(kept));
        callbackOf(args)?.();
        return res;
      }) as typeof res.end;
    }
    void serveFile(req, res, req.url ?? '/', { root: base });
  };
  const A = Buffer.alloc(64 * KiB, 'a');
  const client = await connect();
  client.socket.write('GET /fast-a.bin HTTP/1.1\r\nHost: x\r\n\r\n');
  while (!flush) await new Promise((r) => setImmediate(r));
  t.ok(Buffer.concat(kept).equals(A), 'the middleware kept the whole body');
  // Other responses, served while the chunks are held.
  for (let i = 0; i < 3; i++) {
    const other = await connect();
    other.socket.write('GET /fast-b.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await orHang(other.closed, 'another response');
    t.ok(other.data().subarray(-64 * KiB).equals(Buffer.alloc(64 * KiB, 'b')), 'the other file is served right');
  }
  t.ok(Buffer.concat(kept).equals(A), 'the kept chunks are unchanged');
  flush!();
  client.socket.end();
  await orHang(client.closed, 'the first response');
  t.ok(client.data().subarray(-64 * KiB).equals(A), 'the client got the first file');
  t.comment(`fast path ${capabilities().fastPath ? 'on' : 'off (fallback: bodies never read on the JS thread)'}`);
});

t.test('no native send job starts once the signal has aborted', async (t) => {
  // A send the native side completes on the JS thread returns its byte count
  // at once: a cancel after the start would come too late.
  const file = join(base, 'small-4.txt');
  const size = fs.statSync(file).size;
  fs.readFileSync(file); // resident: the send can complete at once
  let got = 0;
  const ended = new Promise<void>((resolve) => {
    const srv = net.createServer((s) => {
      s.on('data', (d: Buffer) => (got += d.length));
      s.on('end', () => {
        srv.close();
        resolve();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const c = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1', () => {
        const out = (c as unknown as { _handle: { fd: number } })._handle.fd;
        const inFd = fs.openSync(file, 'r');
        const ac = new AbortController();
        ac.abort();
        sendRange(out, inFd, 0, size, ac.signal).then(
          (n) => t.fail(`resolved with ${n} bytes sent`),
          (err: Error & { bytesSent?: number }) => t.same({ name: err.name, bytesSent: err.bytesSent }, { name: 'AbortError', bytesSent: 0 }),
        ).finally(() => {
          fs.closeSync(inFd);
          c.end();
        });
      });
    });
  });
  await orHang(ended, 'the connection');
  t.equal(got, 0, 'no byte reached the peer');
});
