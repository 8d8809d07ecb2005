// Descriptors the environment pinned (pin(), openFile()) and the jobs that
// work on them. A job shares a pinned descriptor instead of duplicating it
// again, so sendFile's pinned source costs one duplicate per send (pin's),
// and the send's only other one is its destination's. unpin() during the
// send cannot close the descriptor under it: the last holder closes it.
//
// Native only: the fallback has no pinned descriptors of its own.
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { binding } from '../lib/core/native';
import type { NativeFailure } from '../lib/core/errors';
import { capabilities } from '../lib/index';
import { scratchDir, makeFile, openFdCount, startPagewarm } from './helpers';

const MiB = 1 << 20;
const dir = scratchDir();
const caps = capabilities();

/** pin/unpin, which the Binding type leaves to lib/send/socket.ts. */
const pinning = binding as unknown as { pin(fd: number): number | NativeFailure; unpin(fd: number): void };

t.test('a send from a pinned descriptor shares it: one duplicate (the destination), and unpin mid-send is safe', { skip: !caps.native && 'the fallback pins nothing' }, async (t) => {
  await startPagewarm(dir); // the pool, the poller and /dev/null open before anything is counted
  const size = 16 * MiB; // far more than loopback buffers take while the receiver is paused
  const path = makeFile(join(dir, 'pinned'), size);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));

  let received = 0;
  let peer: net.Socket | undefined;
  const server = net.createServer((s) => {
    peer = s;
    s.on('error', () => {}); // the client is destroyed mid-send: a reset here is expected
    s.pause();
    s.on('data', (d: Buffer) => (received += d.length));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.teardown(() => client.destroy());
  await new Promise((resolve) => client.once('connect', resolve));
  while (!peer) await new Promise((resolve) => setImmediate(resolve));
  const out = (client as unknown as { _handle: { fd: number } })._handle.fd;

  const pinned = pinning.pin(fd);
  t.type(pinned, 'number', 'pinned');
  const before = openFdCount();
  const sent = binding.send(out, pinned as number, 0, -1, 910001);
  t.ok(sent instanceof Promise, 'queued (too large to start on the JS thread)');
  t.equal(openFdCount(), before + 1, 'one descriptor more while it runs: the destination\'s duplicate, none for the pinned source');
  pinning.unpin(pinned as number);
  t.equal(openFdCount(), before + 1, 'unpin() while the send runs: the job still holds the descriptor');
  peer.resume();
  t.equal(await sent, size, 'every byte sent');
  await new Promise<void>((resolve) => {
    const check = (): void => (received >= size ? resolve() : void setTimeout(check, 5));
    check();
  });
  t.equal(received, size, 'every byte received');
  t.equal(openFdCount(), before - 1, 'settled: the destination\'s duplicate and the unpinned descriptor are closed');
});
