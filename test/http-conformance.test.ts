// serveFile against RFC 9110 (conditional requests, ranges, dates) and
// RFC 9112 (request targets), table-driven: raw request bytes written over
// a socket to a real http server, status and selected headers judged. Run
// with and without the open-file cache; the date rules also in child
// processes in a time zone east and one west of UTC.
import t from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { serveFile, sendFileResponse, closeServeFileCache } from '../lib/index';
import { scratch, compiledLib } from './send-helpers';

t.setTimeout(120_000);
const root = join(scratch('pagewarm-rfc-'), 'www');
fs.mkdirSync(root, { recursive: true });
const TEXT = 'hello world\n'; // 12 bytes
fs.writeFileSync(join(root, 'a.txt'), TEXT);
fs.writeFileSync(join(root, 'empty.txt'), '');
fs.writeFileSync(join(root, 'future.txt'), 'from the future\n');
// A fixed modification time, so the dates in the table are known: Thu, 04 Mar 2021 05:06:07 GMT.
const MTIME = Date.UTC(2021, 2, 4, 5, 6, 7) / 1000;
fs.utimesSync(join(root, 'a.txt'), MTIME, MTIME);
fs.utimesSync(join(root, 'empty.txt'), MTIME, MTIME);
fs.utimesSync(join(root, 'future.txt'), Date.UTC(2099, 0, 1) / 1000, Date.UTC(2099, 0, 1) / 1000);
const LM = 'Thu, 04 Mar 2021 05:06:07 GMT';
const LM_850 = 'Thursday, 04-Mar-21 05:06:07 GMT';
const LM_ASCTIME = 'Thu Mar  4 05:06:07 2021';
const EARLIER = 'Thu, 04 Mar 2021 05:06:06 GMT';
const EARLIER_ASCTIME = 'Thu Mar  4 05:06:06 2021';

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Writes `head` (request line and header lines, no final CRLF) and reads the reply until the server closes. */
function raw(port: number, head: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`${head}\r\nConnection: close\r\n\r\n`));
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no complete response: ${JSON.stringify(all.toString('latin1'))}`));
      const [statusLine, ...lines] = all.subarray(0, end).toString('latin1').split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: all.subarray(end + 4) });
    });
  });
}

/** A server whose handler passes `req.url` to serveFile, as the README shows. */
async function startServer(cache: boolean, options: { etag?: boolean; lastModified?: boolean } = {}): Promise<{ port: number; close: () => void }> {
  const server = http.createServer((req, res) => {
    serveFile(req, res, req.url ?? '/', { root, cache, ...options }).catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** A row: what it checks, the request line and headers, the status, and headers the response must (string) or must not (null) have. */
type Row = [string, string, number, Record<string, string | null>?, ((r: Reply) => string | undefined)?];

const GET_A = 'GET /a.txt HTTP/1.1\r\nHost: x';
const HEAD_A = 'HEAD /a.txt HTTP/1.1\r\nHost: x';
const whole = { 'content-length': '12', 'content-range': null };
const bodyIs = (want: string) => (r: Reply): string | undefined =>
  r.body.toString() === want ? undefined : `body ${JSON.stringify(r.body.toString())}, wanted ${JSON.stringify(want)}`;

function table(etag: string): Row[] {
  const strongTwin = etag.replace(/^W\//, '');
  return [
    ['plain GET', GET_A, 200, { ...whole, 'last-modified': LM }, bodyIs(TEXT)],
    // If-None-Match (13.1.2): weak comparison, *, lists; precedence over If-Modified-Since.
    ['If-None-Match: the ETag', `${GET_A}\r\nIf-None-Match: ${etag}`, 304, { etag }],
    ['If-None-Match: its strong twin (weak comparison)', `${GET_A}\r\nIf-None-Match: ${strongTwin}`, 304],
    ['If-None-Match: a list with it', `${GET_A}\r\nIf-None-Match: "x", ${etag}`, 304],
    ['If-None-Match: two lines, one with it', `${GET_A}\r\nIf-None-Match: "x"\r\nIf-None-Match: ${etag}`, 304],
    ['If-None-Match: *', `${GET_A}\r\nIf-None-Match: *`, 304],
    ['If-None-Match: another', `${GET_A}\r\nIf-None-Match: "other"`, 200, whole],
    ['HEAD If-None-Match: the ETag', `${HEAD_A}\r\nIf-None-Match: ${etag}`, 304],
    ['If-None-Match (no match) wins over If-Modified-Since', `${GET_A}\r\nIf-None-Match: "other"\r\nIf-Modified-Since: ${LM}`, 200, whole],
    ['If-None-Match (match) wins over If-Modified-Since', `${GET_A}\r\nIf-None-Match: ${etag}\r\nIf-Modified-Since: ${EARLIER}`, 304],
    // If-Modified-Since (13.1.3): HTTP-dates only, once, GET and HEAD only.
    ['If-Modified-Since: Last-Modified', `${GET_A}\r\nIf-Modified-Since: ${LM}`, 304, { 'last-modified': LM }],
    ['If-Modified-Since: RFC 850 form', `${GET_A}\r\nIf-Modified-Since: ${LM_850}`, 304],
    ['If-Modified-Since: asctime form', `${GET_A}\r\nIf-Modified-Since: ${LM_ASCTIME}`, 304],
    ['If-Modified-Since: asctime, a second older', `${GET_A}\r\nIf-Modified-Since: ${EARLIER_ASCTIME}`, 200, whole],
    ['If-Modified-Since: a second older', `${GET_A}\r\nIf-Modified-Since: ${EARLIER}`, 200, whole],
    ['If-Modified-Since: HEAD', `${HEAD_A}\r\nIf-Modified-Since: ${LM}`, 304],
    ['If-Modified-Since: a bare year', `${GET_A}\r\nIf-Modified-Since: 2099`, 200, whole],
    ['If-Modified-Since: an ISO date', `${GET_A}\r\nIf-Modified-Since: 2030-01-01`, 200, whole],
    ['If-Modified-Since: no GMT', `${GET_A}\r\nIf-Modified-Since: Fri, 01 Jan 2038 00:00:00`, 200, whole],
    ['If-Modified-Since: another zone', `${GET_A}\r\nIf-Modified-Since: Fri, 01 Jan 2038 00:00:00 +0900`, 200, whole],
    ['If-Modified-Since: received twice', `${GET_A}\r\nIf-Modified-Since: ${LM}\r\nIf-Modified-Since: ${LM}`, 200, whole],
    ['If-Modified-Since: not on POST (405 first)', `POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nIf-Modified-Since: ${LM}`, 405,
      { allow: 'GET, HEAD' }],
    // If-Match (13.1.1): strong comparison, so the weak ETag never matches; * does.
    ['If-Match: the (weak) ETag', `${GET_A}\r\nIf-Match: ${etag}`, 412],
    ['If-Match: its strong twin', `${GET_A}\r\nIf-Match: ${strongTwin}`, 412],
    ['If-Match: *', `${GET_A}\r\nIf-Match: *`, 200, whole],
    ['If-Match: another', `${GET_A}\r\nIf-Match: "other"`, 412],
    // If-Unmodified-Since (13.1.4).
    ['If-Unmodified-Since: a second older', `${GET_A}\r\nIf-Unmodified-Since: ${EARLIER}`, 412],
    ['If-Unmodified-Since: Last-Modified', `${GET_A}\r\nIf-Unmodified-Since: ${LM}`, 200, whole],
    ['If-Unmodified-Since: invalid, ignored', `${GET_A}\r\nIf-Unmodified-Since: 2000`, 200, whole],
    ['If-Unmodified-Since: received twice, ignored', `${GET_A}\r\nIf-Unmodified-Since: ${EARLIER}\r\nIf-Unmodified-Since: ${EARLIER}`, 200, whole],
    ['If-Unmodified-Since: ignored with If-Match: *', `${GET_A}\r\nIf-Match: *\r\nIf-Unmodified-Since: ${EARLIER}`, 200, whole],
    // Ranges (14).
    ['Range: first bytes', `${GET_A}\r\nRange: bytes=0-4`, 206, { 'content-range': 'bytes 0-4/12', 'content-length': '5' }, bodyIs('hello')],
    ['Range: suffix', `${GET_A}\r\nRange: bytes=-6`, 206, { 'content-range': 'bytes 6-11/12' }, bodyIs('world\n')],
    ['Range: clamped', `${GET_A}\r\nRange: bytes=6-1000`, 206, { 'content-range': 'bytes 6-11/12' }],
    ['Range: past the end', `${GET_A}\r\nRange: bytes=12-`, 416, { 'content-range': 'bytes */12' }],
    ['Range: suffix of 0', `${GET_A}\r\nRange: bytes=-0`, 416, { 'content-range': 'bytes */12' }],
    ['Range: invalid (last before first), ignored', `${GET_A}\r\nRange: bytes=5-1`, 200, whole, bodyIs(TEXT)],
    ['Range: malformed, ignored', `${GET_A}\r\nRange: bytes=abc`, 200, whole],
    ['Range: another unit, ignored', `${GET_A}\r\nRange: items=0-1`, 200, whole],
    ['Range: an empty list element (5.6.1) is skipped', `${GET_A}\r\nRange: bytes=0-4,`, 206, { 'content-range': 'bytes 0-4/12' }],
    ['Range: several ranges, the whole file (as before)', `${GET_A}\r\nRange: bytes=0-1,4-5`, 200, whole, bodyIs(TEXT)],
    ['Range on HEAD: ignored', `${HEAD_A}\r\nRange: bytes=0-4`, 200, whole],
    ['Range on HEAD past the end: ignored', `${HEAD_A}\r\nRange: bytes=100-`, 200, whole],
    ['If-Range: the weak ETag never matches', `${GET_A}\r\nRange: bytes=0-4\r\nIf-Range: ${etag}`, 200, whole, bodyIs(TEXT)],
    ['If-Range: another ETag', `${GET_A}\r\nRange: bytes=0-4\r\nIf-Range: "other"`, 200, whole],
    ['If-Range: Last-Modified', `${GET_A}\r\nRange: bytes=0-4\r\nIf-Range: ${LM}`, 206, { 'content-range': 'bytes 0-4/12' }],
    ['If-Range: Last-Modified, asctime', `${GET_A}\r\nRange: bytes=0-4\r\nIf-Range: ${LM_ASCTIME}`, 206],
    ['If-Range: an earlier date', `${GET_A}\r\nRange: bytes=0-4\r\nIf-Range: ${EARLIER}`, 200, whole],
    ['If-Range: received twice', `${GET_A}\r\nRange: bytes=0-4\r\nIf-Range: ${LM}\r\nIf-Range: ${LM}`, 200, whole],
    ['empty file: suffix range, 200 and empty', 'GET /empty.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=-5', 200,
      { 'content-length': '0', 'content-range': null }, bodyIs('')],
    ['empty file: bytes=0-, 416', 'GET /empty.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-', 416, { 'content-range': 'bytes */0' }],
    // Request targets (RFC 9112 3.2).
    ['absolute-form', 'GET http://x/a.txt HTTP/1.1\r\nHost: x', 200, whole, bodyIs(TEXT)],
    ['absolute-form with a port, a query and another Host', 'GET HTTP://example.com:8080/a.txt?v=1 HTTP/1.1\r\nHost: y', 200, whole],
    ['absolute-form, https, a range', 'GET https://x/a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4', 206, { 'content-range': 'bytes 0-4/12' }],
    ['origin-form with a query', 'GET /a.txt?x=1&y HTTP/1.1\r\nHost: x', 200, whole],
    ['asterisk-form', 'GET * HTTP/1.1\r\nHost: x', 400],
    ['absolute-form, another scheme', 'GET ftp://x/a.txt HTTP/1.1\r\nHost: x', 400],
    ['absolute-form with userinfo', 'GET http://u:p@x/a.txt HTTP/1.1\r\nHost: x', 400],
    // Last-Modified never later than Date (8.8.2.1).
    ['a file dated in the future', 'GET /future.txt HTTP/1.1\r\nHost: x', 200, {}, (r) =>
      Date.parse(r.headers['last-modified']) <= Date.parse(r.headers.date) ? undefined
        : `Last-Modified ${r.headers['last-modified']} is later than Date ${r.headers.date}`],
  ];
}

for (const cache of [true, false]) {
  t.test(`the table, cache: ${cache}`, async (t) => {
    const server = await startServer(cache);
    t.teardown(() => {
      server.close();
      closeServeFileCache();
    });
    const etag = (await raw(server.port, HEAD_A)).headers.etag;
    t.match(etag, /^W\/"[^"]+"$/, 'serveFile sends a weak ETag');
    for (const [what, head, status, headers = {}, check] of table(etag)) {
      // Each row twice: the second may be a cache hit.
      for (const pass of [1, 2]) {
        const r = await raw(server.port, head);
        const label = `${what} (${pass})`;
        t.equal(r.status, status, `${label}: ${status}`);
        for (const [name, want] of Object.entries(headers)) {
          if (want === null) t.equal(r.headers[name], undefined, `${label}: no ${name}`);
          else t.equal(r.headers[name], want, `${label}: ${name}`);
        }
        if (status === 304 || status === 412 || status === 416 || r.status === 304) {
          t.notOk(r.body.includes(Buffer.from(TEXT.slice(0, 5))), `${label}: no file bytes`);
        }
        if (check) {
          const problem = check(r);
          t.equal(problem, undefined, `${label}: ${problem ?? 'checked'}`);
        }
      }
    }
  });
}

t.test('without an ETag or without Last-Modified (etag: false, lastModified: false)', async (t) => {
  const rows: Array<[string, { etag?: boolean; lastModified?: boolean }, string, number]> = [
    ['If-Match: a list never matches without an ETag', { etag: false }, 'If-Match: "x"', 412],
    ['If-Match: * still matches', { etag: false }, 'If-Match: *', 200],
    ['If-None-Match: * matches the file', { etag: false }, 'If-None-Match: *', 304],
    ['If-None-Match present: If-Modified-Since ignored', { etag: false }, `If-None-Match: "x"\r\nIf-Modified-Since: ${LM}`, 200],
    ['If-Modified-Since still applies', { etag: false }, `If-Modified-Since: ${LM}`, 304],
    ['If-Range: an ETag cannot match', { etag: false }, 'Range: bytes=0-4\r\nIf-Range: "x"', 200],
    ['If-Modified-Since ignored', { lastModified: false }, `If-Modified-Since: ${LM}`, 200],
    ['If-Unmodified-Since ignored', { lastModified: false }, `If-Unmodified-Since: ${EARLIER}`, 200],
    ['If-Range: a date cannot match', { lastModified: false }, `Range: bytes=0-4\r\nIf-Range: ${LM}`, 200],
  ];
  for (const [what, options, extra, status] of rows) {
    const server = await startServer(false, options);
    const r = await raw(server.port, `${GET_A}\r\n${extra}`);
    server.close();
    t.equal(r.status, status, `${JSON.stringify(options)} ${what}: ${status}`);
    if (options.etag === false) t.equal(r.headers.etag, undefined, 'no ETag sent');
    if (options.lastModified === false) t.equal(r.headers['last-modified'], undefined, 'no Last-Modified sent');
  }
});

/** A server in a child process with TZ=`zone`, serving `root`: its port. */
async function childServer(zone: string): Promise<{ port: number; stop: () => void }> {
  const lib = compiledLib();
  const script = `
    const http = require('node:http');
    const { serveFile } = require(${JSON.stringify(lib)});
    const server = http.createServer((req, res) => {
      serveFile(req, res, req.url, { root: ${JSON.stringify(root)} }).catch(() => res.destroy());
    });
    server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({
      port: server.address().port, offset: new Date(${MTIME * 1000}).getTimezoneOffset() })));
    process.stdin.on('end', () => process.exit(0)).resume();`;
  const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, TZ: zone }, stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    child.on('exit', (code) => reject(new Error(`the child server exited (${code})`)));
  });
  const { port, offset } = JSON.parse(line) as { port: number; offset: number };
  if (offset === 0) throw new Error(`precondition: TZ=${zone} did not move the child off UTC`);
  return { port, stop: () => child.stdin.end() };
}

for (const zone of ['Asia/Tokyo', 'America/New_York']) {
  t.test(`HTTP-dates are GMT whatever the server's zone: TZ=${zone}`, async (t) => {
    const child = await childServer(zone);
    t.teardown(child.stop);
    const rows: Array<[string, string, number]> = [
      ['IMF-fixdate equal to Last-Modified', `If-Modified-Since: ${LM}`, 304],
      ['RFC 850 equal to Last-Modified', `If-Modified-Since: ${LM_850}`, 304],
      ['asctime equal to Last-Modified', `If-Modified-Since: ${LM_ASCTIME}`, 304],
      ['asctime a second older', `If-Modified-Since: ${EARLIER_ASCTIME}`, 200],
      ['If-Unmodified-Since asctime equal', `If-Unmodified-Since: ${LM_ASCTIME}`, 200],
      ['If-Unmodified-Since asctime a second older', `If-Unmodified-Since: ${EARLIER_ASCTIME}`, 412],
      ['If-Range asctime equal', `Range: bytes=0-4\r\nIf-Range: ${LM_ASCTIME}`, 206],
      ['a date without GMT, ignored', 'If-Modified-Since: Fri, 01 Jan 2038 00:00:00', 200],
    ];
    for (const [what, extra, status] of rows) {
      const r = await raw(child.port, `${GET_A}\r\n${extra}`);
      t.equal(r.status, status, `${zone}: ${what}: ${status}`);
    }
    const r = await raw(child.port, GET_A);
    t.equal(r.headers['last-modified'], LM, `${zone}: Last-Modified in GMT`);
  });
}

t.test('sendFileResponse: statusCode must be 200-599', async (t) => {
  const res = (): http.ServerResponse => new http.ServerResponse(new http.IncomingMessage(new net.Socket()));
  const file = join(root, 'a.txt');
  for (const bad of [0, 99, 100, 101, 199, 600, 999, 1000]) {
    await t.rejects(sendFileResponse(res(), file, { statusCode: bad }), {
      name: 'RangeError',
      code: 'ERR_OUT_OF_RANGE',
      message: `The value of "options.statusCode" is out of range. It must be >= 200 && <= 599. Received ${bad}`,
    }, `statusCode ${bad}`);
  }
  await t.rejects(sendFileResponse(res(), file, { statusCode: 200.5 }), { code: 'ERR_OUT_OF_RANGE' });
  await t.rejects(sendFileResponse(res(), file, { statusCode: '200' as never }), { code: 'ERR_INVALID_ARG_TYPE' });
  // 200 and 599 themselves are accepted: served by a real server.
  for (const good of [200, 203, 599]) {
    const server = http.createServer((_req, r) => {
      sendFileResponse(r, file, { statusCode: good }).catch(() => r.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const reply = await raw((server.address() as net.AddressInfo).port, 'GET / HTTP/1.1\r\nHost: x');
    server.close();
    t.equal(reply.status, good, `statusCode ${good} sent`);
    t.equal(reply.body.toString(), TEXT);
  }
});
