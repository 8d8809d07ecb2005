// Bad input, one row each: every case gives its precise error and none
// crashes the process. Async functions reject; sync functions throw.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import {
  prepareForRead,
  prepareForReadSync,
  residency,
  residencySync,
  evict,
  advise,
  configure,
  warmFile,
} from '../lib/index';
import { scratchDir, makeFile } from './helpers';

const dir = scratchDir();
const file = makeFile(join(dir, 'f'), 64 * 1024);
const readFd = fs.openSync(file, 'r');
t.teardown(() => fs.closeSync(readFd));

// What an error must match: a name, a code and a message pattern at least.
type Expect = { name?: string; code: string; message: RegExp; errno?: number; syscall?: string };
const typeErr = (name: RegExp): Expect => ({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', message: name });
const rangeErr = (name: RegExp): Expect => ({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE', message: name });
const sysErr = (code: string, errno: number, syscall: string): Expect => ({
  code,
  errno: -errno,
  syscall,
  message: new RegExp(`^${code}: .+, ${syscall}$`),
});

/** Runs a row against the async and the sync form of warm and residency. */
async function both(t: Test, args: unknown[], expected: Expect, residencyExpected = expected): Promise<void> {
  const a = args as [number, number?, number?];
  await t.rejects(prepareForRead(...a), expected, 'prepareForRead rejects');
  t.throws(() => prepareForReadSync(...a), expected, 'prepareForReadSync throws');
  await t.rejects(residency(...a), residencyExpected, 'residency rejects');
  t.throws(() => residencySync(...a), residencyExpected, 'residencySync throws');
}

const fdRows: Array<[string, unknown, Expect]> = [
  ['fd -1', -1, rangeErr(/"fd" is out of range.*>= 0 && <= 2147483647.*-1/)],
  ['fd 2^31', 2 ** 31, rangeErr(/"fd" is out of range/)],
  ['fd 1.5', 1.5, rangeErr(/It must be an integer/)],
  ['fd "3"', '3', typeErr(/"fd" argument must be of type number or an instance of FileHandle.*string/)],
  ['fd NaN', NaN, rangeErr(/It must be an integer. Received NaN/)],
  ['fd undefined', undefined, typeErr(/Received undefined/)],
  ['fd null', null, typeErr(/Received null/)],
  ['fd {}', {}, typeErr(/Received an instance of Object/)],
  ['fd 3n', 3n, typeErr(/bigint/)],
];
for (const [name, fd, expected] of fdRows) {
  t.test(name, (t) => both(t, [fd], expected));
}

const positionRows: Array<[string, unknown, Expect]> = [
  ['negative', -1, rangeErr(/>= 0 && <= 9007199254740991. Received -1/)],
  ['fractional', 0.5, rangeErr(/It must be an integer/)],
  ['unsafe', 2 ** 53, rangeErr(/9007199254740992/)],
  ['Infinity', Infinity, rangeErr(/It must be an integer/)],
  ['string', '1', typeErr(/of type number/)],
];
for (const [name, value, expected] of positionRows) {
  t.test(`offset ${name}`, (t) => both(t, [readFd, value], { ...expected, message: new RegExp(`"offset"`) }));
  t.test(`length ${name}`, (t) => both(t, [readFd, 0, value], { ...expected, message: new RegExp(`"length"`) }));
}

t.test('a closed fd: EBADF', async (t) => {
  const fd = fs.openSync(file, 'r');
  fs.closeSync(fd);
  await both(t, [fd], sysErr('EBADF', 9, 'sendfile'), sysErr('EBADF', 9, 'cachestat'));
  t.throws(() => evict(fd), sysErr('EBADF', 9, 'posix_fadvise'));
});

t.test('a directory: EISDIR', async (t) => {
  const fd = fs.openSync(dir, 'r');
  t.teardown(() => fs.closeSync(fd));
  await both(t, [fd], sysErr('EISDIR', 21, 'sendfile'), sysErr('EISDIR', 21, 'cachestat'));
});

t.test('a pipe: ESPIPE', async (t) => {
  const [r, w] = pipe();
  t.teardown(() => {
    fs.closeSync(r);
    fs.closeSync(w);
  });
  await both(t, [r], sysErr('ESPIPE', 29, 'sendfile'), sysErr('ESPIPE', 29, 'cachestat'));
  t.throws(() => advise(r, 0, 0, 'dontneed'), sysErr('ESPIPE', 29, 'posix_fadvise'));
});

t.test('a socket: ESPIPE', async (t) => {
  const server = net.createServer((s) => s.on('error', () => {}).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  t.teardown(() => {
    socket.destroy();
    server.close();
  });
  const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
  await both(t, [fd], sysErr('ESPIPE', 29, 'sendfile'), sysErr('ESPIPE', 29, 'cachestat'));
});

t.test('a write-only fd: EBADF', async (t) => {
  const fd = fs.openSync(file, 'a');
  t.teardown(() => fs.closeSync(fd));
  await both(t, [fd], sysErr('EBADF', 9, 'sendfile'), sysErr('EBADF', 9, 'cachestat'));
});

t.test('/dev/zero: EINVAL (no page cache)', async (t) => {
  const fd = fs.openSync('/dev/zero', 'r');
  t.teardown(() => fs.closeSync(fd));
  await both(t, [fd], sysErr('EINVAL', 22, 'sendfile'), sysErr('EINVAL', 22, 'cachestat'));
});

t.test('options and the other functions', async (t) => {
  await t.rejects(prepareForRead(readFd, 0, 1, 'x' as never), typeErr(/"options" argument must be of type object/));
  await t.rejects(prepareForRead(readFd, 0, 1, { signal: {} as never }), typeErr(/"options.signal".*AbortSignal/));
  t.throws(() => configure({ threads: 0 }), rangeErr(/"options.threads".*>= 1 && <= 256/));
  t.throws(() => configure({ threads: 1.5 }), rangeErr(/integer/));
  t.throws(() => configure({ chunkSize: 100 }), rangeErr(/"options.chunkSize"/));
  t.throws(() => configure({ chunkSize: '1' as never }), typeErr(/"options.chunkSize"/));
  t.throws(() => configure('x' as never), typeErr(/"options"/));
  t.throws(() => advise(readFd, -1, 0, 'normal'), rangeErr(/"offset"/));
  t.throws(() => advise(readFd, 0, 0, undefined as never), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => evict(-1), rangeErr(/"fd"/));
  await t.rejects(warmFile(3 as never), typeErr(/"path"/));
  await t.rejects(warmFile(file, { offset: -5 }), rangeErr(/"options.offset"/));
  await t.rejects(warmFile(file, { length: 'x' as never }), typeErr(/"options.length"/));
});

t.test('the process is alive and the descriptor still works', async (t) => {
  t.equal(await prepareForRead(readFd), 64 * 1024);
});

function pipe(): [number, number] {
  // Node has no public pipe(2); a FIFO opened both ways gives the same kind of fd.
  const fifo = join(dir, `fifo-${Math.random()}`);
  require('node:child_process').execFileSync('mkfifo', [fifo]);
  const r = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const w = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  return [r, w];
}
