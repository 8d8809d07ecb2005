// serveStatic against the behaviours of serve-static's own test suite
// (expressjs/serve-static, test/test.js) and the precompressed-file
// behaviours of @fastify/static's (test/static.test.js), over real sockets,
// with real Express 4, Express 5 and a plain node:http server calling the
// middleware the way serve-static's tests do. One table: each row names the
// test it came from; rows marked `deviation` expect pagewarm's deliberate
// difference (listed in docs/http.md, "serveStatic").
import t from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type * as net from 'node:net';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { serveStatic, closeServeFileCache, type ServeStaticOptions } from '../lib/index';
import { scratch } from './send-helpers';

t.setTimeout(120_000);

// serve-static's fixtures, plus precompressed files (.br/.gz beside them).
const fixtures = fs.realpathSync(scratch('pagewarm-static-'));
const files: Record<string, string | Buffer> = {
  '.hidden': 'I am hidden',
  'empty.txt': '',
  'foo bar': 'baz',
  'nums.txt': '123456789',
  'pets/names.txt': 'tobi,loki',
  'snow \u2603/.gitkeep': '',
  'todo.html': '<li>groceries</li>',
  'todo.txt': '- groceries',
  'users/index.html': '<p>tobi, loki, jane</p>',
  'users/tobi.txt': 'ferret',
  'pc/all.html': '<p>all three</p>',
  'pc/gzip-only.html': '<p>gzip only</p>',
  'pc/plain.html': '<p>uncompressed</p>',
  'pc/dir/index.html': '<p>index</p>',
};
for (const [name, body] of Object.entries(files)) {
  fs.mkdirSync(join(fixtures, name, '..'), { recursive: true });
  fs.writeFileSync(join(fixtures, name), body);
}
const br = (s: string) => zlib.brotliCompressSync(Buffer.from(s));
const gz = (s: string) => zlib.gzipSync(Buffer.from(s));
fs.writeFileSync(join(fixtures, 'pc/all.html.br'), br('<p>all three</p>'));
fs.writeFileSync(join(fixtures, 'pc/all.html.gz'), gz('<p>all three</p>'));
fs.writeFileSync(join(fixtures, 'pc/gzip-only.html.gz'), gz('<p>gzip only</p>'));
fs.writeFileSync(join(fixtures, 'pc/dir/index.html.br'), br('<p>index</p>'));

type Host = 'express5' | 'express4' | 'http';
const HOSTS: Host[] = ['express5', 'express4', 'http'];

interface Row {
  /** The test this row ports: `ss:` serve-static, `fs:` @fastify/static. */
  from: string;
  root?: string;
  opts?: ServeStaticOptions;
  /** Mounted under this path (app.use(mount, mw); the http host mimics it with req.originalUrl). */
  mount?: string;
  /** Rewrites req.url before the middleware (serve-static's harness hook); http host only. */
  rewrite?: (url: string) => string;
  /** Sets res.statusCode before the middleware from the second request on (http host only). */
  presetStatus?: number;
  hosts?: Host[];
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** Send the ETag of a first GET of the same path in this header. */
  etagIn?: string;
  status: number;
  body?: string | RegExp | Buffer;
  has?: Record<string, string | RegExp>;
  lacks?: string[];
  /** pagewarm answers differently on purpose; the row expects pagewarm's answer. */
  deviation?: string;
}

const F = fixtures;
const setCustom: ServeStaticOptions = { setHeaders: (res) => res.setHeader('x-custom', 'set') };
const rows: Row[] = [
  // basic operations
  { from: 'ss: should serve static files', path: '/todo.txt', status: 200, body: '- groceries' },
  { from: 'ss: should support nesting', path: '/users/tobi.txt', status: 200, body: 'ferret' },
  { from: 'ss: should set Content-Type', path: '/todo.txt', status: 200, has: { 'content-type': 'text/plain; charset=utf-8' } },
  { from: 'ss: should set Last-Modified', path: '/todo.txt', status: 200, has: { 'last-modified': /\d{2} \w{3} \d{4}/ } },
  { from: 'ss: should default max-age=0', path: '/todo.txt', status: 200, has: { 'cache-control': 'public, max-age=0' } },
  { from: 'ss: should support urlencoded pathnames', path: '/foo%20bar', status: 200, body: 'baz' },
  { from: 'ss: should not choke on auth-looking URL', path: '//todo@txt', status: 404 },
  { from: 'ss: should support index.html', path: '/users/', status: 200, body: '<p>tobi, loki, jane</p>', has: { 'content-type': /html/ } },
  { from: 'ss: should support ../', path: '/users/../todo.txt', status: 404, body: 'sorry!',
    deviation: 'any `..` segment is refused (403, here falling through), even one that stays inside root' },
  { from: 'ss: should support HEAD', method: 'HEAD', path: '/todo.txt', status: 200, body: '' },
  { from: 'ss: should skip POST requests', method: 'POST', path: '/todo.txt', status: 404, body: 'sorry!' },
  { from: 'ss: should support conditional requests', path: '/todo.txt', etagIn: 'if-none-match', status: 304 },
  { from: 'ss: should support precondition checks', path: '/todo.txt', headers: { 'if-match': '"foo"' }, status: 412 },
  { from: 'ss: should serve zero-length files', path: '/empty.txt', status: 200, body: '' },
  { from: 'ss: should ignore hidden files', path: '/.hidden', status: 404 },
  // acceptRanges
  { from: 'ss: acceptRanges false: should not include Accept-Ranges', opts: { acceptRanges: false }, path: '/nums.txt', status: 200, lacks: ['accept-ranges'] },
  { from: 'ss: acceptRanges false: should ignore Range request header', opts: { acceptRanges: false }, path: '/nums.txt',
    headers: { range: 'bytes=0-3' }, status: 200, body: '123456789', lacks: ['accept-ranges', 'content-range'] },
  { from: 'ss: acceptRanges true: should include Accept-Ranges', opts: { acceptRanges: true }, path: '/nums.txt', status: 200, has: { 'accept-ranges': 'bytes' } },
  { from: 'ss: acceptRanges true: should obey Range request header', opts: { acceptRanges: true }, path: '/nums.txt',
    headers: { range: 'bytes=0-3' }, status: 206, body: '1234', has: { 'accept-ranges': 'bytes', 'content-range': 'bytes 0-3/9' } },
  // cacheControl
  { from: 'ss: cacheControl false: should not include Cache-Control', opts: { cacheControl: false }, path: '/nums.txt', status: 200, lacks: ['cache-control'] },
  { from: 'ss: cacheControl false: should ignore maxAge', opts: { cacheControl: false, maxAge: 12000 }, path: '/nums.txt', status: 200, lacks: ['cache-control'] },
  { from: 'ss: cacheControl true: should include Cache-Control', opts: { cacheControl: true }, path: '/nums.txt', status: 200, has: { 'cache-control': 'public, max-age=0' } },
  // extensions
  { from: 'ss: extensions: should be not be enabled by default', path: '/todo', status: 404 },
  { from: 'ss: extensions: should be configurable', opts: { extensions: 'txt' as unknown as string[] }, path: '/todo', status: 200, body: '- groceries' },
  { from: 'ss: extensions: should support disabling extensions', opts: { extensions: false }, path: '/todo', status: 404 },
  { from: 'ss: extensions: should support fallbacks', opts: { extensions: ['htm', 'html', 'txt'] }, path: '/todo', status: 200, body: '<li>groceries</li>' },
  { from: 'ss: extensions: should 404 if nothing found', opts: { extensions: ['htm', 'html', 'txt'] }, path: '/bob', status: 404 },
  // fallthrough
  { from: 'ss: fallthrough: should default to true', path: '/does-not-exist', status: 404, body: 'sorry!' },
  { from: 'ss: fallthrough true: should fall-through when OPTIONS request', opts: { fallthrough: true }, method: 'OPTIONS', path: '/todo.txt', status: 404, body: 'sorry!' },
  { from: 'ss: fallthrough true: should fall-through when URL malformed', opts: { fallthrough: true }, path: '/%', status: 404, body: 'sorry!' },
  { from: 'ss: fallthrough true: should fall-through when traversing past root', opts: { fallthrough: true }, path: '/users/../../todo.txt', status: 404, body: 'sorry!' },
  { from: 'ss: fallthrough true: should fall-through when URL too long', root: F + Array(10000).join('/foobar'), opts: { fallthrough: true }, path: '/', status: 404, body: 'sorry!' },
  { from: 'ss: fallthrough true, redirect true: should fall-through when directory', opts: { fallthrough: true, redirect: true }, path: '/pets/', status: 404, body: 'sorry!' },
  { from: 'ss: fallthrough true, redirect true: should redirect when directory without slash', opts: { fallthrough: true, redirect: true }, path: '/pets', status: 301, has: { location: '/pets/' } },
  { from: 'ss: fallthrough true, redirect false: should fall-through when directory', opts: { fallthrough: true, redirect: false }, path: '/pets/', status: 404, body: 'sorry!' },
  { from: 'ss: fallthrough true, redirect false: should fall-through when directory without slash', opts: { fallthrough: true, redirect: false }, path: '/pets', status: 404, body: 'sorry!' },
  { from: 'ss: fallthrough false: should 405 when OPTIONS request', opts: { fallthrough: false }, method: 'OPTIONS', path: '/todo.txt', status: 405, has: { allow: 'GET, HEAD' } },
  { from: 'ss: fallthrough false: should 400 when URL malformed', opts: { fallthrough: false }, path: '/%', status: 400, body: /error 400/ },
  { from: 'ss: fallthrough false: should 403 when traversing past root', opts: { fallthrough: false }, path: '/users/../../todo.txt', status: 403, body: /error 403/ },
  { from: 'ss: fallthrough false: should 404 when URL too long', root: F + Array(10000).join('/foobar'), opts: { fallthrough: false }, path: '/', status: 404, body: /error 404/ },
  { from: 'ss: fallthrough false, redirect true: should 404 when directory', opts: { fallthrough: false, redirect: true }, path: '/pets/', status: 404, body: /error 404/ },
  { from: 'ss: fallthrough false, redirect true: should redirect when directory without slash', opts: { fallthrough: false, redirect: true }, path: '/pets', status: 301, has: { location: '/pets/' } },
  { from: 'ss: fallthrough false, redirect false: should 404 when directory', opts: { fallthrough: false, redirect: false }, path: '/pets/', status: 404, body: /error 404/ },
  { from: 'ss: fallthrough false, redirect false: should 404 when directory without slash', opts: { fallthrough: false, redirect: false }, path: '/pets', status: 404, body: /error 404/ },
  // hidden files, immutable, lastModified, maxAge
  { from: 'ss: hidden files: should be served when dotfiles: "allow" is given', opts: { dotfiles: 'allow' }, path: '/.hidden', status: 200, body: 'I am hidden' },
  { from: 'ss: dotfiles "deny" (send): 403', opts: { dotfiles: 'deny', fallthrough: false }, path: '/.hidden', status: 403, body: /error 403/ },
  { from: 'ss: immutable: should default to false', path: '/nums.txt', status: 200, has: { 'cache-control': 'public, max-age=0' } },
  { from: 'ss: immutable: should set immutable directive in Cache-Control', opts: { immutable: true, maxAge: '1h' }, path: '/nums.txt', status: 200,
    has: { 'cache-control': 'public, max-age=3600, immutable' } },
  { from: 'ss: lastModified false: should not include Last-Modifed', opts: { lastModified: false }, path: '/nums.txt', status: 200, lacks: ['last-modified'] },
  { from: 'ss: lastModified true: should include Last-Modifed', opts: { lastModified: true }, path: '/nums.txt', status: 200,
    has: { 'last-modified': /^\w{3}, \d+ \w+ \d+ \d+:\d+:\d+ \w+$/ } },
  { from: 'ss: maxAge: should accept string', opts: { maxAge: '30d' }, path: '/todo.txt', status: 200, has: { 'cache-control': `public, max-age=${60 * 60 * 24 * 30}` } },
  { from: 'ss: maxAge: should be reasonable when infinite', opts: { maxAge: Infinity }, path: '/todo.txt', status: 200, has: { 'cache-control': `public, max-age=${60 * 60 * 24 * 365}` } },
  // redirect
  { from: 'ss: redirect: should redirect directories', path: '/users', status: 301, has: { location: '/users/' } },
  { from: 'ss: redirect: should include HTML link', path: '/users', status: 301, body: /\/users\//, has: { 'content-type': /html/ } },
  { from: 'ss: redirect: should redirect directories with query string', path: '/users?name=john', status: 301, has: { location: '/users/?name=john' } },
  { from: 'ss: redirect: should not redirect to protocol-relative locations', path: '//users', status: 301, has: { location: '/users/' } },
  { from: 'ss: redirect: should ensure redirect URL is properly encoded', hosts: ['http'], rewrite: (u) => u.replace(/\/snow(\/|$)/, '/snow \u2603$1'),
    path: '/snow', status: 301, has: { location: '/snow%20%E2%98%83/', 'content-type': /html/ }, body: />Redirecting to \/snow%20%E2%98%83\/</ },
  { from: 'ss: redirect: should respond with default Content-Security-Policy', path: '/users', status: 301, has: { 'content-security-policy': "default-src 'none'" } },
  { from: 'ss: redirect: should not redirect incorrectly', path: '/', status: 404 },
  { from: 'ss: redirect false: should disable redirect', opts: { redirect: false }, path: '/users', status: 404 },
  // setHeaders
  { from: 'ss: setHeaders: should get called when sending file', opts: setCustom, path: '/nums.txt', status: 200, has: { 'x-custom': 'set' } },
  { from: 'ss: setHeaders: should not get called on 404', opts: setCustom, path: '/bogus', status: 404, lacks: ['x-custom'] },
  { from: 'ss: setHeaders: should not get called on redirect', opts: setCustom, path: '/users', status: 301, lacks: ['x-custom'] },
  { from: 'send: headers set by setHeaders win', opts: { setHeaders: (res) => res.setHeader('cache-control', 'no-store') }, path: '/nums.txt', status: 200,
    has: { 'cache-control': 'no-store' } },
  // roots
  { from: 'ss: non-existent root path: should 404 for any file', root: join(F, 'does-not-exist'), path: '/todo.txt', status: 404 },
  { from: 'ss: non-existent root path: should not allow traversal', root: join(F, 'does-not-exist'), path: '/../todo.txt', status: 404 },
  { from: 'ss: traversing past root: should catch urlencoded ../', path: '/users/%2e%2e/%2e%2e/todo.txt', status: 404, body: 'sorry!' },
  { from: 'ss: traversing past root: should not allow root path disclosure', path: '/users/../../fixtures/todo.txt', status: 404, body: 'sorry!' },
  // Range
  { from: 'ss: Range: should support byte ranges', path: '/nums.txt', headers: { range: 'bytes=0-4' }, status: 206, body: '12345' },
  { from: 'ss: Range: should be inclusive', path: '/nums.txt', headers: { range: 'bytes=0-0' }, status: 206, body: '1' },
  { from: 'ss: Range: should set Content-Range', path: '/nums.txt', headers: { range: 'bytes=2-5' }, status: 206, has: { 'content-range': 'bytes 2-5/9' } },
  { from: 'ss: Range: should support -n', path: '/nums.txt', headers: { range: 'bytes=-3' }, status: 206, body: '789' },
  { from: 'ss: Range: should support n-', path: '/nums.txt', headers: { range: 'bytes=3-' }, status: 206, body: '456789' },
  { from: 'ss: Range: should set Content-Length to the # of octets transferred', path: '/nums.txt', headers: { range: 'bytes=2-3' }, status: 206,
    has: { 'content-length': '2' }, body: '34' },
  { from: 'ss: Range: last-byte-pos past the length is taken as length-1', path: '/nums.txt', headers: { range: 'bytes=2-50' }, status: 206,
    body: '3456789', has: { 'content-length': '7', 'content-range': 'bytes 2-8/9' } },
  { from: 'ss: Range: first-byte-pos past the length: 416 with Content-Range of complete length', path: '/nums.txt', headers: { range: 'bytes=9-50' },
    status: 416, has: { 'content-range': 'bytes */9' } },
  { from: 'ss: Range: syntactically invalid: 200 and the entire contents', path: '/nums.txt', headers: { range: 'asdf' }, status: 200, body: '123456789' },
  // mounting
  { from: 'ss: index at mount point: should redirect correctly', root: join(F, 'users'), mount: '/users', path: '/users', status: 301, has: { location: '/users/' } },
  { from: 'ss: when mounted: should redirect relative to the originalUrl', mount: '/static', path: '/static/users', status: 301, has: { location: '/static/users/' } },
  { from: 'ss: mounted "root" as a file: should load the file when on trailing slash', root: join(F, 'todo.txt'), mount: '/todo', path: '/todo', status: 200, body: '- groceries' },
  { from: 'ss: mounted "root" as a file: should 404 when trailing slash', root: join(F, 'todo.txt'), mount: '/todo', path: '/todo/', status: 404 },
  { from: 'ss: responding non-2xx or 304: should respond as-is', hosts: ['http'], presetStatus: 500, path: '/todo.txt', etagIn: 'if-none-match', status: 304,
    deviation: 'the status is serveFile\'s own: a status set on res before the middleware is not kept' },
  { from: 'ss: index disabled: should next() on directory', opts: { index: false }, mount: '/static', path: '/static/users/', status: 404, body: 'sorry!' },
  { from: 'ss: index disabled: should redirect to trailing slash', opts: { index: false }, mount: '/static', path: '/static/users', status: 301, has: { location: '/static/users/' } },
  { from: 'ss: index disabled: should next() on mount point', opts: { index: false }, mount: '/static', path: '/static/', status: 404, body: 'sorry!' },
  { from: 'ss: index disabled: should redirect to trailing slash mount point', opts: { index: false }, mount: '/static', path: '/static', status: 301, has: { location: '/static/' } },
  // precompressed (@fastify/static's preCompressed tests)
  { from: 'fs: will serve pre-compressed files with .br at the highest priority', opts: { precompressed: true }, path: '/pc/all.html',
    headers: { 'accept-encoding': 'gzip, deflate, br' }, status: 200, body: br('<p>all three</p>'),
    has: { 'content-encoding': 'br', 'content-type': 'text/html; charset=utf-8', vary: 'Accept-Encoding' } },
  { from: 'fs: sends Vary: Accept-Encoding when falling back to the uncompressed file', opts: { precompressed: true }, path: '/pc/plain.html',
    headers: { 'accept-encoding': 'gzip, deflate, br' }, status: 200, body: '<p>uncompressed</p>', has: { vary: 'Accept-Encoding' }, lacks: ['content-encoding'] },
  { from: 'fs: appends to an existing Vary header set via setHeaders', opts: { precompressed: true, setHeaders: (res) => res.setHeader('vary', 'Accept-Language') },
    path: '/pc/all.html', headers: { 'accept-encoding': 'br' }, status: 200, has: { vary: 'Accept-Language, Accept-Encoding', 'content-encoding': 'br' } },
  { from: 'fs: does not duplicate Accept-Encoding in an existing Vary header', opts: { precompressed: true, setHeaders: (res) => res.setHeader('vary', 'accept-encoding') },
    path: '/pc/all.html', headers: { 'accept-encoding': 'br' }, status: 200, has: { vary: 'accept-encoding' } },
  { from: 'fs: does not append Accept-Encoding to an existing Vary: * header', opts: { precompressed: true, setHeaders: (res) => res.setHeader('vary', '*') },
    path: '/pc/all.html', headers: { 'accept-encoding': 'br' }, status: 200, has: { vary: '*' } },
  { from: 'fs: does not send Vary: Accept-Encoding when preCompressed is disabled', path: '/pc/plain.html', headers: { 'accept-encoding': 'gzip, br' }, status: 200,
    lacks: ['vary', 'content-encoding'] },
  { from: 'fs: will serve pre-compressed files and fallback to .gz if .br is not on disk', opts: { precompressed: true }, path: '/pc/gzip-only.html',
    headers: { 'accept-encoding': 'gzip, deflate, br' }, status: 200, body: gz('<p>gzip only</p>'), has: { 'content-encoding': 'gzip' } },
  { from: 'fs: will serve pre-compressed files with .gzip if * directive used', opts: { precompressed: true }, path: '/pc/all.html',
    headers: { 'accept-encoding': '*' }, status: 200, has: { 'content-encoding': 'br' },
    deviation: '`*` accepts every coding, and the server\'s order (br first) decides' },
  { from: 'fs: will serve uncompressed files if there are no compressed variants on disk', opts: { precompressed: true }, path: '/pc/plain.html',
    headers: { 'accept-encoding': 'gzip, deflate, br' }, status: 200, lacks: ['content-encoding'] },
  { from: 'fs: will serve pre-compressed index (dir/ → index.html.br)', opts: { precompressed: true }, path: '/pc/dir/', headers: { 'accept-encoding': 'br' },
    status: 200, body: br('<p>index</p>'), has: { 'content-encoding': 'br', 'content-type': 'text/html; charset=utf-8' } },
  { from: 'RFC 9110 12.5.3: q-values: gzip;q=1, br;q=0.5 prefers gzip', opts: { precompressed: true }, path: '/pc/all.html',
    headers: { 'accept-encoding': 'gzip;q=1, br;q=0.5' }, status: 200, has: { 'content-encoding': 'gzip' } },
  { from: 'RFC 9110 12.5.3: br;q=0 refuses br', opts: { precompressed: true }, path: '/pc/all.html', headers: { 'accept-encoding': 'br;q=0, gzip' },
    status: 200, has: { 'content-encoding': 'gzip' } },
  { from: 'RFC 9110 12.5.3: no Accept-Encoding: identity', opts: { precompressed: true }, path: '/pc/all.html', status: 200, body: '<p>all three</p>',
    lacks: ['content-encoding'], has: { vary: 'Accept-Encoding' } },
  { from: 'precompressed: Range applies to the encoded bytes', opts: { precompressed: ['gzip'] }, path: '/pc/all.html',
    headers: { 'accept-encoding': 'gzip', range: 'bytes=0-1' }, status: 206, body: gz('<p>all three</p>').subarray(0, 2),
    has: { 'content-range': `bytes 0-1/${gz('<p>all three</p>').length}` } },
  { from: 'precompressed: the variant has its own ETag', opts: { precompressed: true }, path: '/pc/all.html', headers: { 'accept-encoding': 'br' },
    status: 200, has: { etag: /-br"$/ } },
];

type Server = { port: number; close(): Promise<void> };

async function listen(handler: http.RequestListener): Promise<Server> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

// The final handlers every host ends with, as serve-static's harness does.
const finalNotFound = (_req: http.IncomingMessage, res: http.ServerResponse) => {
  res.statusCode = 404;
  res.end('sorry!');
};
const finalError = (err: { status?: number }, res: http.ServerResponse) => {
  res.statusCode = err.status ?? 500;
  res.end(`error ${res.statusCode}`);
};

async function serverFor(host: Host, row: Row): Promise<Server> {
  const mw = serveStatic(row.root ?? fixtures, row.opts);
  if (host === 'http') {
    let n = 0;
    return listen((req, res) => {
      if (row.rewrite) req.url = row.rewrite(req.url ?? '/');
      if (row.presetStatus && n++) res.statusCode = row.presetStatus;
      if (row.mount) {
        const url = req.url ?? '/';
        if (!url.startsWith(row.mount)) return finalNotFound(req, res);
        (req as { originalUrl?: string }).originalUrl = url;
        req.url = url.slice(row.mount.length) || '/';
        if (!req.url.startsWith('/')) req.url = `/${req.url}`;
      }
      mw(req, res, (err?: unknown) => (err ? finalError(err as { status?: number }, res) : finalNotFound(req, res)));
    });
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const express = require(host === 'express5' ? 'express' : 'express4');
  const app = express();
  if (row.mount) app.use(row.mount, mw);
  else app.use(mw);
  app.use(finalNotFound);
  app.use((err: { status?: number }, _req: unknown, res: http.ServerResponse, _next: unknown) => finalError(err, res));
  return listen(app);
}

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: Buffer }

function request(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers: { connection: 'close', ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

const counts = { rows: 0, passed: 0, deviations: 0 };
t.after(() => {
  closeServeFileCache();
  t.comment(`conformance: ${counts.passed}/${counts.rows} row×host checks passed; ${rows.filter((r) => r.deviation).length} rows are deliberate deviations`);
});

for (const row of rows) {
  t.test(row.from + (row.deviation ? ` [deviation: ${row.deviation}]` : ''), async (t) => {
    for (const host of row.hosts ?? HOSTS) {
      counts.rows++;
      const server = await serverFor(host, row);
      try {
        const headers = { ...row.headers };
        if (row.etagIn) {
          const first = await request(server.port, 'GET', row.path);
          t.ok(first.headers.etag, `${host}: a first GET has an ETag`);
          headers[row.etagIn] = first.headers.etag!;
        }
        const r = await request(server.port, row.method ?? 'GET', row.path, headers);
        let ok = t.equal(r.status, row.status, `${host}: status`);
        if (row.body !== undefined) {
          if (row.body instanceof RegExp) ok = t.match(r.body.toString('latin1'), row.body, `${host}: body`) && ok;
          else ok = t.same(r.body, Buffer.isBuffer(row.body) ? row.body : Buffer.from(row.body), `${host}: body`) && ok;
        }
        for (const [name, want] of Object.entries(row.has ?? {})) {
          ok = (want instanceof RegExp ? t.match(r.headers[name], want, `${host}: ${name}`) : t.equal(r.headers[name], want, `${host}: ${name}`)) && ok;
        }
        for (const name of row.lacks ?? []) ok = t.notOk(name in r.headers, `${host}: no ${name}`) && ok;
        if (ok) counts.passed++;
      } finally {
        await server.close();
      }
    }
  });
}

t.test('bad roots and options are refused when the middleware is made', async (t) => {
  t.throws(() => serveStatic(undefined as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' }, 'ss: should require root path');
  t.throws(() => serveStatic(42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' }, 'ss: should require root path to be string');
  t.throws(() => serveStatic(''), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => serveStatic(fixtures, { setHeaders: 3 as never }), { code: 'ERR_INVALID_ARG_TYPE', message: /setHeaders/ }, 'ss: setHeaders should reject non-functions');
  t.throws(() => serveStatic(fixtures, { maxAge: -1 }), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => serveStatic(fixtures, { maxAge: '1 fortnight' }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => serveStatic(fixtures, { index: ['a/b'] }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => serveStatic(fixtures, { precompressed: ['deflate' as never] }), { code: 'ERR_INVALID_ARG_VALUE' });
  t.throws(() => serveStatic(fixtures, { fallthrough: 'no' as never }), { code: 'ERR_INVALID_ARG_TYPE' });
});
