// Faults on the receiving side and on the socket: the receiver resets,
// stalls, half-closes or goes away mid-send; the socket is destroyed or ended
// locally mid-send; storms of aborts. Over TCP and Unix domain sockets.
// Each case states its documented outcome; none may crash, hang or leak.
//
// Outcomes (also in docs/guarantees.md):
// - Receiver resets or goes away: sendfile rejects EPIPE or ECONNRESET with
//   bytesSent; sendFile rejects (EPIPE, ECONNRESET or ERR_STREAM_DESTROYED)
//   with bytesSent and the socket is destroyed. The process never sees SIGPIPE.
// - Receiver stalls: the send waits in pagewarm's poller without a thread; the
//   event loop and other sends go on; an abort rejects with an AbortError and
//   bytesSent; the socket's idle timeout still fires.
// - Receiver half-closes: sends complete, every byte arrives (also when Node
//   ends our side in reply, allowHalfOpen false).
// - Socket destroyed locally mid-send: sendFile rejects ERR_STREAM_DESTROYED
//   with bytesSent, and the receiver gets exactly bytesSent file bytes.
//   transferTo(outFd) works on its own duplicate: destroying the net.Socket does
//   not stop it (abort it with its signal).
// - socket.end() mid-send: the FIN follows the file; everything arrives.
// - Abort storms: every call settles, either complete or AbortError with
//   bytesSent; a socket on which an abort hit after bytes left is destroyed,
//   one whose send was aborted before any byte left stays usable; what each
//   receiver got is exactly the completed sends and the aborted ones' bytesSent
//   prefixes, in call order.
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { transferTo, sendFile, configure, stats, capabilities } from '../lib/index';
import { scratchDir, fdList, fdsAdded, settledFdList, startPagewarm } from './helpers';

const MiB = 1 << 20;
/** Natively sends to plain sockets are zero-copy; the portable fallback copies. */
const ZERO_COPY = capabilities().zeroCopySend;
const dir = scratchDir();
type Kind = 'tcp' | 'unix';
const kinds: Kind[] = ['tcp', 'unix'];

// A file whose every 4 KiB page is stamped with its index: misplaced bytes show.
const SIZE = 48 * MiB;
const content = Buffer.alloc(SIZE);
for (let at = 0; at < SIZE; at += 4096) content.writeUInt32LE(at / 4096, at);
const path = join(dir, 'file');
fs.writeFileSync(path, content);
const fd = fs.openSync(path, 'r');
fs.fsyncSync(fd);
t.teardown(() => fs.closeSync(fd));

interface Link {
  socket: net.Socket;
  peer: net.Socket;
  /** Bytes the peer received, when it closed. */
  received: Promise<Buffer>;
  destroy(): void;
}

let n = 0;
async function link(kind: Kind, opts: { allowHalfOpen?: boolean; peerPaused?: boolean } = {}): Promise<Link> {
  const server = net.createServer({ allowHalfOpen: true });
  const address = kind === 'unix' ? join(dir, `l${n++}.sock`) : 0;
  await new Promise<void>((r) => (kind === 'unix' ? server.listen(address, r) : server.listen(0, '127.0.0.1', r)));
  const target = kind === 'unix' ? { path: address as string } : { port: (server.address() as net.AddressInfo).port, host: '127.0.0.1' };
  const socket = net.connect({ ...target, allowHalfOpen: opts.allowHalfOpen ?? false });
  socket.on('error', () => {});
  const peer = await new Promise<net.Socket>((r) => server.once('connection', r));
  server.close();
  peer.on('error', () => {});
  if (opts.peerPaused !== false) peer.pause();
  const parts: Buffer[] = [];
  peer.on('data', (d) => parts.push(d));
  const received = new Promise<Buffer>((r) => peer.once('close', () => r(Buffer.concat(parts))));
  peer.on('end', () => peer.end());
  if (socket.connecting) await new Promise((r) => socket.once('connect', r));
  return { socket, peer, received, destroy: () => (socket.destroy(), peer.destroy()) };
}

function fdOf(socket: net.Socket): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until a send is parked in the poller (its socket buffer is full: bytes have left). */
async function parked(atLeast = 1): Promise<void> {
  for (let i = 0; i < 500 && stats().waiting < atLeast; i++) await sleep(5);
  if (stats().waiting < atLeast) throw new Error(`no send parked after 2.5 s (waiting ${stats().waiting})`);
}

async function settledPool(): Promise<number> {
  for (let i = 0; i < 100 && stats().queued + stats().active + stats().waiting > 0; i++) await sleep(20);
  return stats().queued + stats().active + stats().waiting;
}

let fdsBefore: string[] = [];
t.before(async () => {
  configure({ chunkSize: MiB });
  // Start the pool, /dev/null and the poller before counting descriptors.
  await startPagewarm(dir);
  const l = await link('tcp', { peerPaused: false });
  await sendFile(l.socket, fd, { length: 4096 });
  l.destroy();
  await l.received;
  fdsBefore = await settledFdList();
});
t.teardown(() => configure({ chunkSize: 8 * MiB }));

for (const kind of kinds) {
  t.test(`${kind}: the receiver resets / goes away mid-send`, async (t) => {
    // sendfile: a receiver that reads a little and then closes with data unread (RST).
    const a = await link(kind);
    const sending = transferTo(fdOf(a.socket), fd, 0, SIZE);
    await parked();
    if (kind === 'tcp') a.peer.resetAndDestroy();
    else a.peer.destroy();
    const err = await sending.then(
      () => null,
      (e) => e,
    );
    t.ok(err, 'sendfile rejected');
    // The fallback cannot duplicate the destination: when Node has already
    // closed the socket it saw reset, the next write finds EBADF (documented).
    t.match(err?.code, ZERO_COPY ? /^(EPIPE|ECONNRESET)$/ : /^(EPIPE|ECONNRESET|EBADF)$/, `sendfile: ${err?.code}`);
    t.ok(err.bytesSent > 0 && err.bytesSent < SIZE, `bytesSent ${err.bytesSent}`);
    a.destroy();

    // sendFile: the same; the socket is destroyed.
    const b = await link(kind);
    const sending2 = sendFile(b.socket, fd);
    await parked();
    if (kind === 'tcp') b.peer.resetAndDestroy();
    else b.peer.destroy();
    const err2 = await sending2.then(
      () => null,
      (e) => e,
    );
    t.match(err2?.code, /^(EPIPE|ECONNRESET|ERR_STREAM_DESTROYED)$/, `sendFile: ${err2?.code}`);
    t.type(err2?.bytesSent, 'number', 'with bytesSent');
    t.ok(b.socket.destroyed, 'the socket is destroyed');
    if (ZERO_COPY) t.equal(process.listenerCount('SIGPIPE'), 0, 'no SIGPIPE handler needed: the process is alive');
    else t.equal(process.listenerCount('SIGPIPE'), 1, "only the fallback's own no-op SIGPIPE listener: the process is alive");
  });

  t.test(`${kind}: a stalled receiver parks the send; the loop and other sends go on; abort settles it`, async (t) => {
    const stalled = await link(kind);
    const controller = new AbortController();
    stalled.socket.setTimeout(200);
    const timedOut = new Promise((r) => stalled.socket.once('timeout', r));
    const sending = sendFile(stalled.socket, fd, { signal: controller.signal });
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    await parked();
    t.ok(stats().waiting >= 1, `the send waits in the poller (waiting: ${stats().waiting})`);
    await sleep(100);
    const other = await link(kind, { peerPaused: false });
    const r = await sendFile(other.socket, fd, { length: 8 * MiB });
    t.equal(r.bytes, 8 * MiB, 'another send completed meanwhile');
    other.socket.end();
    t.ok((await other.received).equals(content.subarray(0, 8 * MiB)), 'byte-exact');
    await timedOut;
    t.pass("the socket's idle timeout fired while the receiver stalled");
    clearInterval(ticker);
    // Behaviour, not timing (the machine is shared): timers ran while the send was parked.
    t.ok(ticks > 0, `the event loop kept running timers while the send was parked (${ticks} ticks)`);
    controller.abort(new Error('give up'));
    const err = await sending.then(
      () => null,
      (e) => e,
    );
    t.equal(err?.name, 'AbortError', 'rejected with an AbortError');
    t.ok(err.bytesSent > 0, `bytesSent ${err.bytesSent}`);
    t.ok(stalled.socket.destroyed, 'bytes had left: the socket is destroyed');
    stalled.peer.resume();
    const got = await stalled.received;
    t.equal(got.length, err.bytesSent, 'the receiver got exactly bytesSent bytes');
    t.ok(got.equals(content.subarray(0, got.length)), 'byte-exact');
  });

  for (const allowHalfOpen of [true, false]) {
    t.test(`${kind}: the receiver half-closes mid-send (allowHalfOpen ${allowHalfOpen})`, async (t) => {
      const l = await link(kind, { allowHalfOpen });
      const a = sendFile(l.socket, fd, { length: 16 * MiB }).then((r) => r.bytes);
      const b = sendFile(l.socket, fd, { offset: 16 * MiB, length: 16 * MiB });
      l.socket.write('tail');
      await parked();
      l.peer.end(); // FIN from the receiver; it still reads
      l.peer.resume();
      t.equal(await a, 16 * MiB, 'the first sendFile completed');
      t.same(await b, { bytes: 16 * MiB, zeroCopy: ZERO_COPY }, 'the second sendFile completed');
      if (allowHalfOpen) l.socket.end();
      const got = await l.received;
      t.equal(got.length, 32 * MiB + 4, 'every byte arrived');
      t.ok(got.subarray(0, 32 * MiB).equals(content.subarray(0, 32 * MiB)), 'byte-exact, in order');
      t.equal(got.subarray(32 * MiB).toString(), 'tail', 'the write made during the send came after it');
    });
  }

  t.test(`${kind}: the socket destroyed locally mid-send`, async (t) => {
    const l = await link(kind);
    const sending = sendFile(l.socket, fd);
    await parked();
    l.socket.destroy();
    const err = await sending.then(
      () => null,
      (e) => e,
    );
    t.equal(err?.code, 'ERR_STREAM_DESTROYED', 'rejected ERR_STREAM_DESTROYED');
    t.ok(err.bytesSent > 0 && err.bytesSent < SIZE, `bytesSent ${err.bytesSent}`);
    l.peer.resume();
    const got = await l.received;
    t.equal(got.length, err.bytesSent, 'the receiver got exactly bytesSent bytes, then end of stream');
    t.ok(got.equals(content.subarray(0, got.length)), 'byte-exact');

    const m = await link(kind);
    const raw = transferTo(fdOf(m.socket), fd, 0, 8 * MiB);
    await parked();
    m.socket.destroy();
    m.peer.resume();
    if (ZERO_COPY) {
      // transferTo(outFd) holds its own duplicate: destroying the net.Socket does not stop it.
      t.equal(await raw, 8 * MiB, 'transferTo(outFd) completed on its duplicate');
      t.ok((await m.received).equals(content.subarray(0, 8 * MiB)), 'byte-exact, then end of stream');
    } else {
      // The fallback writes to the caller's descriptor itself: once it is
      // closed the send stops with EBADF, never writing to a reused number.
      const e = await raw.then(() => null, (x) => x);
      t.match(e, { code: 'EBADF', syscall: 'sendfile' }, 'the fallback stops with EBADF');
      const rawGot = await m.received;
      t.equal(rawGot.length, e?.bytesSent, 'the receiver got exactly bytesSent bytes');
      t.ok(rawGot.equals(content.subarray(0, rawGot.length)), 'byte-exact, then end of stream');
    }
  });

  t.test(`${kind}: socket.end() mid-send: the FIN follows the file`, async (t) => {
    const l = await link(kind);
    l.socket.write('head');
    const sending = sendFile(l.socket, fd, { length: 12 * MiB });
    l.socket.end('tail');
    l.peer.resume();
    t.same(await sending, { bytes: 12 * MiB, zeroCopy: ZERO_COPY });
    const got = await l.received;
    t.equal(got.length, 12 * MiB + 8);
    t.equal(got.subarray(0, 4).toString(), 'head');
    t.ok(got.subarray(4, 4 + 12 * MiB).equals(content.subarray(0, 12 * MiB)), 'byte-exact');
    t.equal(got.subarray(4 + 12 * MiB).toString(), 'tail');
  });

  t.test(`${kind}: abort storm: 16 sockets x 12 sends, aborted at random moments`, async (t) => {
    // Half the receivers start paused and read after 30 ms, so some aborts land part-way.
    const links = await Promise.all(Array.from({ length: 16 }, (_, i) => link(kind, { peerPaused: i % 2 === 0 })));
    setTimeout(() => links.forEach((l) => l.peer.resume()), 30);
    type Call = { offset: number; length: number; p: Promise<{ bytes?: number; err?: { name: string; code?: string; bytesSent: number } }> };
    const calls: Call[][] = links.map(() => []);
    const controllers: AbortController[] = [];
    let seed = 12345;
    const rand = (k: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % k;
    };
    links.forEach((l, i) => {
      for (let j = 0; j < 12; j++) {
        const controller = new AbortController();
        controllers.push(controller);
        const offset = rand(SIZE - MiB);
        const length = 1 + rand(4 * MiB);
        const when = rand(5);
        if (when === 0) controller.abort(); // before the call
        const p = sendFile(l.socket, fd, { offset, length, warm: rand(2) === 0, signal: controller.signal }).then(
          (r) => ({ bytes: r.bytes }),
          (e) => ({ err: e }),
        );
        calls[i].push({ offset, length: Math.min(length, SIZE - offset), p });
        if (when === 1) controller.abort(); // right after the call, before it started
        else if (when === 2) queueMicrotask(() => controller.abort());
        else if (when === 3) setTimeout(() => controller.abort(), rand(20));
        // when 4: never aborted
      }
    });
    const outcomes = await Promise.all(calls.map((cs) => Promise.all(cs.map((c) => c.p))));
    let completed = 0;
    let abortedClean = 0;
    let abortedPartial = 0;
    let destroyedAfter = 0;
    let missingBytesSent = 0;
    for (let i = 0; i < links.length; i++) {
      const l = links[i];
      const expected: Buffer[] = [];
      let destroyed = false;
      const story: string[] = [];
      const problems: string[] = [];
      outcomes[i].forEach((o, j) => {
        const c = calls[i][j];
        if (o.bytes !== undefined) {
          story.push(`#${j} resolved ${o.bytes}/${c.length}`);
          if (destroyed) problems.push(`#${j} completed on a destroyed socket`);
          if (o.bytes !== c.length) problems.push(`#${j} resolved ${o.bytes} of ${c.length}`);
          expected.push(content.subarray(c.offset, c.offset + c.length));
          completed++;
        } else {
          const e = o.err!;
          story.push(`#${j} rejected ${e.name} ${e.code ?? ''} bytesSent ${e.bytesSent}/${c.length}`);
          if (typeof e.bytesSent !== 'number') missingBytesSent++;
          const sent = e.bytesSent ?? 0;
          if (destroyed) {
            if (sent !== 0) problems.push(`#${j}: bytes sent on a destroyed socket`);
            destroyedAfter++;
            return;
          }
          if (e.name !== 'AbortError') problems.push(`#${j}: unexpected rejection ${e.name} ${e.code}`);
          if (sent > 0) {
            expected.push(content.subarray(c.offset, c.offset + sent));
            destroyed = true; // bytes had left: the socket is destroyed
            abortedPartial++;
          } else {
            abortedClean++;
          }
        }
      });
      t.same(problems, [], `socket ${i}: every outcome as documented${problems.length ? ` (${story.join('; ')})` : ''}`);
      t.equal(l.socket.destroyed, destroyed, `socket ${i}: destroyed exactly when an abort hit after bytes left`);
      if (!l.socket.destroyed) l.socket.end();
      const got = await l.received;
      const want = Buffer.concat(expected);
      t.ok(got.length === want.length && got.equals(want), `socket ${i}: received exactly the completed sends and partial prefixes, in order (${got.length} bytes, want ${want.length})`);
      l.destroy();
    }
    t.comment(`${completed} completed, ${abortedClean} aborted before any byte, ${abortedPartial} aborted part-way, ${destroyedAfter} refused on a destroyed socket`);
    t.equal(await settledPool(), 0, 'nothing left in the pool or the poller');
    t.equal(missingBytesSent, 0, 'every rejection carries bytesSent, as SendFileError documents');
  });
}

t.test('sendfile abort storm: 300 sends to 30 Unix sockets, random aborts', async (t) => {
  // Receivers drain in this process; every call settles with its length or an AbortError with bytesSent.
  let results = { done: 0, aborted: 0 };
  const links = await Promise.all(Array.from({ length: 30 }, () => link('unix', { peerPaused: false })));
  const all: Array<Promise<void>> = [];
  for (let i = 0; i < 300; i++) {
    const l = links[i % links.length];
    const c = new AbortController();
    const length = 1 + ((i * 7919) % (4 * MiB));
    all.push(
      transferTo(fdOf(l.socket), fd, (i * 4096) % (SIZE - 4 * MiB), length, { signal: c.signal }).then(
        (got) => {
          if (got !== length) throw new Error(`resolved ${got}, want ${length}`);
          results.done++;
        },
        (e) => {
          if (e.name !== 'AbortError' || typeof e.bytesSent !== 'number' || e.bytesSent > length) throw e;
          results.aborted++;
        },
      ),
    );
    if (i % 3 === 0) setTimeout(() => c.abort(), i % 10);
    else if (i % 3 === 1) c.abort();
  }
  await Promise.all(all);
  t.equal(results.done + results.aborted, 300, `every call settled (${results.done} complete, ${results.aborted} aborted)`);
  for (const l of links) l.destroy();
  results = { done: 0, aborted: 0 };
  t.equal(await settledPool(), 0, 'nothing left in the pool or the poller');
});

t.test('no descriptor leaked', async (t) => {
  await sleep(100);
  t.same(fdsAdded(fdsBefore, fdList()), [], 'no descriptor open that was not before the faults');
});

// Found by the abort storm above: these rejected without bytesSent (fixed in f400989).
t.test(
  'a signal aborted before the call: AbortError with bytesSent 0 (sendfile and sendFile)',
  async (t) => {
    const l = await link('tcp', { peerPaused: false });
    t.teardown(() => l.destroy());
    const reason = new Error('early');
    const a = await transferTo(fdOf(l.socket), fd, 0, 10, { signal: AbortSignal.abort(reason) }).catch((e) => e);
    t.match(a, { name: 'AbortError', cause: reason, bytesSent: 0 }, 'sendfile');
    const b = await sendFile(l.socket, fd, { signal: AbortSignal.abort(reason) }).catch((e) => e);
    t.match(b, { name: 'AbortError', cause: reason, bytesSent: 0 }, 'sendFile');
    t.notOk(l.socket.destroyed, 'the socket is untouched');
  },
);
