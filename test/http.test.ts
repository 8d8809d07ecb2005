// serveFile / sendFileResponse, judged by curl: full GET, HEAD, ranges,
// 304s and preconditions, keep-alive, pipelining, traversal attempts, HTTPS,
// a client that goes away, and the example server.
import t from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { serveFile, sendFileResponse, contentType, type ServeFileResult } from '../lib/index';
import { scratch, randomFile, fdCount, sleep, compiledLib, MiB } from './send-helpers';

t.setTimeout(120_000); // generous: the machine is shared; it takes about 10 s alone
const base = scratch('pagewarm-http-');
const root = join(base, 'www');
fs.mkdirSync(join(root, 'sub'), { recursive: true });
fs.writeFileSync(join(root, 'a.txt'), 'hello world\n');
fs.writeFileSync(join(root, 'index.html'), '<!doctype html><title>pagewarm</title>\n');
fs.writeFileSync(join(root, 'empty.txt'), '');
fs.writeFileSync(join(root, 'with space ü.txt'), 'spaced\n');
fs.writeFileSync(join(root, 'sub', 'inner.json'), '{"inner":true}\n');
const BIG = 5 * MiB + 7;
randomFile(join(root, 'big.bin'), BIG);
const big = fs.readFileSync(join(root, 'big.bin'));
const SECRET = 'TOP-SECRET-do-not-serve';
fs.writeFileSync(join(base, 'secret.txt'), `${SECRET}\n`);
fs.symlinkSync('a.txt', join(root, 'link-inside.txt')); // stays in root: served
fs.symlinkSync('../secret.txt', join(root, 'escape.txt')); // leaves root: refused
fs.symlinkSync('..', join(root, 'escdir')); // a directory outside root
execFileSync('mkfifo', [join(root, 'fifo')]);
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

const results: Array<ServeFileResult & { url: string }> = [];
const errors: Array<Error & { code?: string }> = [];
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '/';
  if (url.startsWith('/custom')) {
    // sendFileResponse directly: a slice, a custom status and headers.
    sendFileResponse(res, join(root, 'big.bin'), { offset: 100, length: 1000, statusCode: 203, headers: { 'X-Custom': 'yes' } }).then(
      (r) => results.push({ ...r, statusCode: 203, url }),
      (e) => errors.push(e),
    );
    return;
  }
  if (url.startsWith('/patched')) {
    // Middleware that wraps res.write/res.end (as compression does): the body must go through them.
    let through = 0;
    const write = res.write.bind(res) as (chunk: Buffer) => boolean;
    res.write = ((chunk: Buffer) => {
      through += chunk.length;
      return write(chunk);
    }) as typeof res.write;
    res.setHeader('x-through', 'pending');
    sendFileResponse(res, join(root, 'big.bin')).then(
      (r) => results.push({ ...r, statusCode: 200, url: `${url}#${through}` }),
      (e) => errors.push(e),
    );
    return;
  }
  serveFile(req, res, url, { root, maxAge: 30 }).then(
    (r) => results.push({ ...r, url }),
    (e) => errors.push(e),
  );
}
const server = http.createServer(handler);
let origin = '';

t.before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});
t.teardown(() => {
  server.closeAllConnections();
  server.close();
});

interface CurlResult {
  status: number;
  connects: number;
  size: number;
  headers: Record<string, string>;
  body: Buffer;
}

let curlRun = 0;
/** curl as the client: one connection for all the URLs (keep-alive), bodies kept apart. */
function curl(urls: string[], extra: string[] = []): Promise<CurlResult[]> {
  const run = curlRun++;
  const outs = urls.map((_, i) => join(base, `body-${run}-${i}`));
  const args = ['-s', '--path-as-is', '-w', '\\n@@%{http_code} %{num_connects} %{size_download}@@%{header_json}', ...extra];
  urls.forEach((u, i) => args.push('-o', outs[i], u));
  return new Promise((resolve, reject) => {
    execFile('curl', args, { maxBuffer: 1 << 24, timeout: 30_000 }, (err, stdout) => {
      if (err && !stdout) return reject(err);
      const parts = stdout.split('\n@@').slice(1);
      resolve(
        parts.map((part, i) => {
          const [stats, json] = part.split('@@');
          const [status, connects, size] = stats.split(' ').map(Number);
          const raw = JSON.parse(json) as Record<string, string[]>;
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(raw)) headers[k.toLowerCase()] = v.join(', ');
          const body = fs.existsSync(outs[i]) ? fs.readFileSync(outs[i]) : Buffer.alloc(0);
          fs.rmSync(outs[i], { force: true });
          return { status, connects, size, headers, body };
        }),
      );
    });
  });
}
const get = async (path: string, extra: string[] = []): Promise<CurlResult> => (await curl([origin + path], extra))[0];

t.test('full GET: the exact bytes, with length, type, validators and caching headers', async (t) => {
  const r = await get('/big.bin');
  t.equal(r.status, 200);
  t.equal(sha(r.body), sha(big), 'sha256 of the body matches the file');
  t.equal(r.headers['content-length'], String(BIG));
  t.equal(r.headers['content-type'], 'application/octet-stream');
  t.equal(r.headers['accept-ranges'], 'bytes');
  t.equal(r.headers['cache-control'], 'public, max-age=30');
  t.match(r.headers.etag, /^W\/"[0-9a-f]+-[0-9a-f]+"$/);
  t.equal(r.headers['last-modified'], new Date(Math.floor(fs.statSync(join(root, 'big.bin')).mtimeMs / 1000) * 1000).toUTCString());
  t.match(results.at(-1), { url: '/big.bin', statusCode: 200, bytes: BIG, zeroCopy: true }, 'the body went zero-copy');

  const html = await get('/index.html');
  t.equal(html.headers['content-type'], 'text/html; charset=utf-8');
  t.equal(html.body.toString(), fs.readFileSync(join(root, 'index.html'), 'utf8'));
  const text = await get('/with%20space%20%C3%BC.txt?query=ignored');
  t.equal(text.status, 200, 'a percent-encoded name, a query string');
  t.equal(text.body.toString(), 'spaced\n');
  const json = await get('/sub/inner.json');
  t.equal(json.headers['content-type'], 'application/json; charset=utf-8');
  const empty = await get('/empty.txt');
  t.equal(empty.status, 200);
  t.equal(empty.headers['content-length'], '0');
  t.equal(empty.body.length, 0);
  const inside = await get('/link-inside.txt');
  t.equal(inside.body.toString(), 'hello world\n', 'a symlink that stays inside root is served');
  t.equal(contentType('x.WOFF2'), 'font/woff2', 'types by extension, case-insensitive');
  t.equal(contentType('Makefile'), 'application/octet-stream');
});

t.test('HEAD: the headers of a GET, no body', async (t) => {
  const r = await get('/big.bin', ['-I']);
  t.equal(r.status, 200);
  t.equal(r.headers['content-length'], String(BIG));
  t.equal(r.size, 0, 'no body bytes');
  t.match(results.at(-1), { url: '/big.bin', statusCode: 200, bytes: 0 });
});

t.test('ranges: first, middle, suffix, open-ended, clamped, unsatisfiable, several, malformed, If-Range', async (t) => {
  const etag = (await get('/big.bin', ['-I'])).headers.etag;
  const cases: Array<[string, number, number | null, number | null]> = [
    // header, status, first byte, last byte (null: whole file or none)
    ['bytes=0-99', 206, 0, 99],
    ['bytes=1000000-1999999', 206, 1000000, 1999999],
    ['bytes=-500', 206, BIG - 500, BIG - 1],
    ['bytes=5000000-', 206, 5000000, BIG - 1],
    ['bytes=5242000-99999999', 206, 5242000, BIG - 1],
    [`bytes=${BIG}-`, 416, null, null],
    ['bytes=99999999-100000000', 416, null, null],
    ['bytes=-0', 416, null, null],
    ['bytes=0-1,5-6', 200, null, null],
    ['bytes=abc', 200, null, null],
    ['bytes=10-5', 200, null, null],
  ];
  for (const [range, status, first, last] of cases) {
    const r = await get('/big.bin', ['-H', `Range: ${range}`]);
    t.equal(r.status, status, `${range}: ${status}`);
    if (status === 206) {
      t.equal(r.headers['content-range'], `bytes ${first}-${last}/${BIG}`, `${range}: Content-Range`);
      t.equal(sha(r.body), sha(big.subarray(first!, last! + 1)), `${range}: exactly those bytes`);
    } else if (status === 416) {
      t.equal(r.headers['content-range'], `bytes */${BIG}`, `${range}: Content-Range */size`);
      t.notOk(r.body.includes(big.subarray(0, 16)), 'no file bytes');
    } else {
      t.equal(sha(r.body), sha(big), `${range}: the whole file`);
    }
  }
  const ifRange = await get('/big.bin', ['-H', 'Range: bytes=0-9', '-H', `If-Range: ${etag}`]);
  t.equal(ifRange.status, 206, 'If-Range with the current ETag: the range');
  const stale = await get('/big.bin', ['-H', 'Range: bytes=0-9', '-H', 'If-Range: "stale"']);
  t.equal(stale.status, 200, 'If-Range with another ETag: the whole file');
  t.equal(stale.body.length, BIG);
  const head = await get('/big.bin', ['-I', '-H', 'Range: bytes=-10']);
  t.equal(head.status, 206, 'HEAD with a range');
  t.equal(head.headers['content-length'], '10');
  t.equal(head.size, 0);
});

t.test('304 Not Modified and 412 Precondition Failed', async (t) => {
  const first = await get('/a.txt');
  const { etag } = first.headers;
  const lastModified = first.headers['last-modified'];
  const cases: Array<[string, string[], number]> = [
    ['If-None-Match: the ETag', ['-H', `If-None-Match: ${etag}`], 304],
    ['If-None-Match: a list with it', ['-H', `If-None-Match: "x", ${etag}`], 304],
    ['If-None-Match: *', ['-H', 'If-None-Match: *'], 304],
    ['If-None-Match: another', ['-H', 'If-None-Match: "other"'], 200],
    ['If-Modified-Since: Last-Modified', ['-H', `If-Modified-Since: ${lastModified}`], 304],
    ['If-Modified-Since: later', ['-H', `If-Modified-Since: ${new Date(Date.now() + 86400e3).toUTCString()}`], 304],
    ['If-Modified-Since: earlier', ['-H', 'If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT'], 200],
    ['If-Modified-Since: garbage', ['-H', 'If-Modified-Since: yesterday-ish'], 200],
    ['If-None-Match wins over If-Modified-Since', ['-H', 'If-None-Match: "other"', '-H', `If-Modified-Since: ${lastModified}`], 200],
    ['If-Match: another', ['-H', 'If-Match: "other"'], 412],
    ['If-Match: the ETag', ['-H', `If-Match: ${etag}`], 200],
    ['If-Unmodified-Since: earlier', ['-H', 'If-Unmodified-Since: Thu, 01 Jan 1970 00:00:01 GMT'], 412],
  ];
  for (const [what, args, status] of cases) {
    const r = await get('/a.txt', args);
    t.equal(r.status, status, `${what}: ${status}`);
    if (status === 304) {
      t.equal(r.size, 0, `${what}: no body`);
      t.equal(r.headers.etag, etag, `${what}: the ETag again`);
    }
    if (status === 200) t.equal(r.body.toString(), 'hello world\n');
  }
});

t.test('keep-alive: several requests on one connection, errors included', async (t) => {
  const paths = ['/a.txt', '/big.bin', '/missing', '/big.bin', '/index.html', '/a.txt'];
  const rs = await curl(paths.map((p) => origin + p), ['-H', 'Range: bytes=0-']);
  t.same(rs.map((r) => r.connects), [1, 0, 0, 0, 0, 0], 'curl opened one connection and reused it for every request');
  t.same(rs.map((r) => r.status), [206, 206, 404, 206, 206, 206]);
  t.equal(sha(rs[1].body), sha(big));
  t.equal(sha(rs[3].body), sha(big));
  t.equal(rs[5].body.toString(), 'hello world\n');
  const plain = await curl([`${origin}/a.txt`, `${origin}/a.txt`, `${origin}/big.bin`]);
  t.same(plain.map((r) => r.connects), [1, 0, 0]);
  t.same(plain.map((r) => r.status), [200, 200, 200]);
  t.equal(sha(plain[2].body), sha(big));
});

/** Reads HTTP/1.1 responses with Content-Length bodies off one socket. */
function readResponses(socket: net.Socket, count: number, heads: boolean[]): Promise<Array<{ status: number; headers: Record<string, string>; body: Buffer }>> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const out: Array<{ status: number; headers: Record<string, string>; body: Buffer }> = [];
    socket.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const status = Number(lines[0].split(' ')[1]);
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
        }
        const length = heads[out.length] || status === 304 ? 0 : Number(headers['content-length'] ?? 0);
        if (buf.length < end + 4 + length) return;
        out.push({ status, headers, body: buf.subarray(end + 4, end + 4 + length) });
        buf = buf.subarray(end + 4 + length);
        if (out.length === count) {
          resolve(out);
          return;
        }
      }
    });
    socket.on('error', reject);
  });
}

t.test('pipelining: requests sent at once are answered in order, bodies exact', async (t) => {
  const port = (server.address() as net.AddressInfo).port;
  const socket = net.connect(port, '127.0.0.1');
  t.teardown(() => socket.destroy());
  await new Promise((r) => socket.once('connect', r));
  const reqs = [
    'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n',
    'HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=-1000\r\n\r\n',
    'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /custom HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n',
  ];
  const responses = readResponses(socket, reqs.length, [false, false, true, false, false, false, false]);
  socket.write(reqs.join(''));
  const rs = await responses;
  t.same(rs.map((r) => r.status), [200, 200, 200, 206, 404, 203, 200]);
  t.equal(sha(rs[0].body), sha(big), 'the first, large body exact');
  t.equal(rs[1].body.toString(), 'hello world\n');
  t.equal(rs[2].headers['content-length'], String(BIG), 'HEAD: length, no body');
  t.equal(sha(rs[3].body), sha(big.subarray(BIG - 1000)), 'a range');
  t.equal(sha(rs[5].body), sha(big.subarray(100, 1100)), 'sendFileResponse slice');
  t.equal(rs[6].body.toString(), fs.readFileSync(join(root, 'index.html'), 'utf8'), 'and the connection is still in step');
});

t.test('traversal attempts are refused, never served', async (t) => {
  const attempts = [
    '/../secret.txt',
    '/../../../../etc/passwd',
    '/sub/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/.%2e/secret.txt',
    '/%2e%2e%2fsecret.txt',
    '/..%2fsecret.txt',
    '/sub/..%2f..%2fsecret.txt',
    '/..%5csecret.txt',
    '/sub/..\\..\\secret.txt',
    '/%252e%252e/secret.txt',
    '/%c0%ae%c0%ae/secret.txt',
    '/%00',
    '/a.txt%00.html',
    '/a.txt%00',
    '/escape.txt',
    '/escdir/secret.txt',
    '/%',
    '/fifo',
    '/sub',
    '/sub/',
    '//etc/passwd',
  ];
  const secretHits: string[] = [];
  for (const path of attempts) {
    const r = await get(path, ['--max-time', '10']);
    t.ok([400, 403, 404].includes(r.status), `${path}: ${r.status}`);
    if (r.body.includes(SECRET) || r.body.includes('root:x:0:0')) secretHits.push(path);
  }
  t.same(secretHits, [], 'no attempt ever got a byte of a file outside root');
  const post = await get('/a.txt', ['-X', 'POST', '-d', 'x']);
  t.equal(post.status, 405, 'POST: 405');
  t.equal(post.headers.allow, 'GET, HEAD');
  t.equal((await get('/a.txt')).status, 200, 'and the server serves on');
});

t.test('sendFileResponse: a slice with custom status and headers; middleware-wrapped responses', async (t) => {
  const r = await get('/custom');
  t.equal(r.status, 203);
  t.equal(r.headers['x-custom'], 'yes');
  t.equal(r.headers['content-length'], '1000');
  t.equal(r.headers['content-type'], 'application/octet-stream', 'from the path');
  t.equal(sha(r.body), sha(big.subarray(100, 1100)));
  t.match(results.find((x) => x.url === '/custom'), { bytes: 1000, zeroCopy: true });
  const head = await get('/custom', ['-I']);
  t.equal(head.headers['content-length'], '1000');
  t.equal(head.size, 0);

  const p = await get('/patched');
  t.equal(sha(p.body), sha(big), 'exact bytes through the wrapped res.write');
  const rec = results.find((x) => x.url.startsWith('/patched'));
  t.match(rec, { bytes: BIG, zeroCopy: false });
  t.equal(rec?.url, `/patched#${BIG}`, 'every byte went through the wrapper');

  const fake = {} as http.ServerResponse;
  await t.rejects(sendFileResponse(fake, join(root, 'a.txt')), { code: 'ERR_INVALID_ARG_TYPE' });
  await t.rejects(
    sendFileResponse(new http.ServerResponse(new http.IncomingMessage(new net.Socket())), 42 as never, { statusCode: 99 }),
    { code: 'ERR_OUT_OF_RANGE' },
  );
});

t.test('a client that goes away mid-body: rejection, the server serves on, no leaked descriptor', async (t) => {
  const LARGE = 48 * MiB; // more than the socket buffers on both ends hold
  randomFile(join(root, 'large.bin'), LARGE);
  await get('/a.txt'); // sockets of earlier tests are idle
  const before = fdCount();
  const errorsBefore = errors.length;
  // 48 MiB at 200 KB/s: curl gives up after a second.
  const r = await get('/large.bin', ['--limit-rate', '200k', '--max-time', '1']);
  t.ok(r.size < LARGE, `curl got ${r.size} bytes before it gave up`);
  for (let i = 0; i < 200 && errors.length === errorsBefore; i++) await sleep(10);
  const err = errors.at(-1)!;
  t.ok(errors.length > errorsBefore, 'serveFile rejected');
  t.match(err?.code, /^(ERR_STREAM_DESTROYED|EPIPE|ECONNRESET)$/, `with ${err?.code}`);
  t.equal((await get('/a.txt')).status, 200, 'the server serves on');
  server.closeIdleConnections();
  for (let i = 0; i < 100 && fdCount() > before; i++) await sleep(20);
  t.ok(fdCount() <= before, `descriptors: ${fdCount()} now, ${before} before`);
});

t.test('HTTPS: served through the TLS socket (copying), bytes exact', async (t) => {
  const key = join(base, 'key.pem');
  const cert = join(base, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'], {
    stdio: 'ignore',
  });
  const served: ServeFileResult[] = [];
  const secure = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => {
    void serveFile(req, res, req.url ?? '/', { root }).then((r) => served.push(r));
  });
  await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    secure.closeAllConnections();
    secure.close();
  });
  const o = `https://127.0.0.1:${(secure.address() as net.AddressInfo).port}`;
  const rs = await curl([`${o}/big.bin`, `${o}/a.txt`], ['-k', '--http1.1']);
  t.same(rs.map((r) => r.status), [200, 200]);
  t.equal(sha(rs[0].body), sha(big));
  t.same(rs.map((r) => r.connects), [1, 0], 'keep-alive over TLS');
  t.match(served[0], { statusCode: 200, bytes: BIG, zeroCopy: false });
});

t.test("Fastify: sendFileResponse on reply.raw after reply.hijack()", async (t) => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const fastify = require('fastify') as (opts?: object) => {
    get(path: string, handler: (req: unknown, reply: { hijack(): void; raw: http.ServerResponse }) => unknown): void;
    listen(opts: { port: number; host: string }): Promise<string>;
    close(): Promise<void>;
  };
  const app = fastify();
  const sent: Array<{ bytes: number; zeroCopy: boolean }> = [];
  app.get('/file', async (_req, reply) => {
    reply.hijack();
    sent.push(await sendFileResponse(reply.raw, join(root, 'big.bin'), { headers: { 'x-from': 'fastify' } }));
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => app.close());
  const rs = await curl([`${address}/file`, `${address}/file`]);
  t.same(rs.map((r) => r.status), [200, 200]);
  t.same(rs.map((r) => r.connects), [1, 0], 'keep-alive');
  t.equal(sha(rs[0].body), sha(big));
  t.equal(sha(rs[1].body), sha(big));
  t.equal(rs[0].headers['x-from'], 'fastify');
  t.same(sent, [
    { bytes: BIG, zeroCopy: true },
    { bytes: BIG, zeroCopy: true },
  ]);
});

t.test('examples/static-server runs and serves', async (t) => {
  const example = join(dirname(compiledLib()), '../examples/static-server.js');
  const child = spawn(process.execPath, [example, root, '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const banner = String((await lines.next()).value);
  const m = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(banner);
  t.ok(m, `banner: ${banner}`);
  t.match(banner, /zero-copy/);
  const o = `http://127.0.0.1:${m![1]}`;
  const rs = await curl([`${o}/`, `${o}/big.bin`, `${o}/../secret.txt`]);
  t.same(rs.map((r) => r.status), [200, 200, 403]);
  t.equal(rs[0].body.toString(), fs.readFileSync(join(root, 'index.html'), 'utf8'), '/ serves index.html');
  t.equal(sha(rs[1].body), sha(big));
  const log = String((await lines.next()).value);
  t.match(log, /^GET \/ 200 \d+B zero-copy/, `log line: ${log}`);
});
