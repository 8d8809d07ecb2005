// pagewarm/fastify with real Fastify 5 over real sockets: the plugin's
// routes under a prefix, reply.sendFile, and what Fastify users rely on
// around a hijacked reply (hooks before and after, the request log line
// with its status, the not-found and error handlers for misses). Rows
// marked `fs:` port behaviours of @fastify/static's test suite.
import t from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import pagewarmStatic, { type PagewarmStaticOptions } from '../lib/fastify/index';
import { closeServeFileCache } from '../lib/index';
import { scratch } from './send-helpers';

t.setTimeout(120_000);

const root = fs.realpathSync(scratch('pagewarm-fastify-'));
const other = fs.realpathSync(scratch('pagewarm-fastify-other-'));
const write = (dir: string, name: string, body: string | Buffer) => {
  fs.mkdirSync(join(dir, name, '..'), { recursive: true });
  fs.writeFileSync(join(dir, name), body);
};
write(root, 'index.html', '<h1>home</h1>');
write(root, 'a.txt', 'alpha beta gamma');
write(root, 'deep/path/b.txt', 'bee');
write(root, 'dir/index.html', '<p>dir</p>');
write(root, '.secret', 'hidden');
write(root, 'page.html', '<p>page</p>');
write(root, 'page.html.br', zlib.brotliCompressSync('<p>page</p>'));
write(other, 'elsewhere.txt', 'from the other root');

interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }
function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('latin1') }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A Fastify app with the plugin, its log lines captured, and every hook recorded in order. */
async function app(options: Partial<PagewarmStaticOptions>, extra?: (f: FastifyInstance) => void) {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({ write(chunk, _e, cb) { lines.push(JSON.parse(String(chunk))); cb(); } });
  const f = Fastify({ logger: { level: 'info', stream } });
  const events: string[] = [];
  f.addHook('onRequest', async (req) => { events.push(`onRequest ${req.url}`); });
  f.addHook('preHandler', async (req) => { events.push(`preHandler ${req.url}`); });
  f.addHook('onResponse', async (req, reply) => { events.push(`onResponse ${req.url} ${reply.statusCode}`); });
  f.setNotFoundHandler((req, reply) => { void reply.code(404).send(`not found: ${req.url}`); });
  await f.register(pagewarmStatic, { root, ...options } as PagewarmStaticOptions);
  extra?.(f);
  await f.listen({ port: 0, host: '127.0.0.1' });
  const port = (f.server.address() as { port: number }).port;
  return { f, port, lines, events, close: async () => { await f.close(); } };
}

t.after(() => closeServeFileCache());

t.test('serves the root under a prefix, with serveStatic semantics', async (t) => {
  const a = await app({ prefix: '/static' });
  t.teardown(a.close);
  const r = await get(a.port, '/static/a.txt');
  t.equal(r.status, 200);
  t.equal(r.body, 'alpha beta gamma');
  t.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
  t.match(r.headers.etag, /^W\/"/);
  t.equal((await get(a.port, '/static/deep/path/b.txt')).body, 'bee', 'fs: nested paths');
  const head = await get(a.port, '/static/a.txt', {}, 'HEAD');
  t.equal(head.status, 200, 'fs: HEAD');
  t.equal(head.headers['content-length'], '16');
  t.equal(head.body, '');
  const range = await get(a.port, '/static/a.txt', { range: 'bytes=6-9' });
  t.equal(range.status, 206, 'Range');
  t.equal(range.body, 'beta');
  t.equal((await get(a.port, '/static/a.txt', { 'if-none-match': r.headers.etag! })).status, 304, 'fs: 304 for If-None-Match');
  const idx = await get(a.port, '/static/');
  t.equal(idx.body, '<h1>home</h1>', 'fs: index.html for the prefix');
  t.equal((await get(a.port, '/static/dir/')).body, '<p>dir</p>', 'fs: index.html of a directory');
  const redirect = await get(a.port, '/static/dir');
  t.equal(redirect.status, 301, 'fs: a directory without its slash redirects');
  t.equal(redirect.headers.location, '/static/dir/');
  const bare = await get(a.port, '/static');
  t.equal(bare.status, 301, 'the prefix without its slash redirects to it');
  t.equal(bare.headers.location, '/static/');
});

t.test('misses go to the not-found handler; dotfiles are hidden; .. is refused', async (t) => {
  const a = await app({ prefix: '/' });
  t.teardown(a.close);
  const r = await get(a.port, '/nope.txt');
  t.equal(r.status, 404);
  t.equal(r.body, 'not found: /nope.txt', "fs: 404 through the app's not-found handler");
  t.equal((await get(a.port, '/.secret')).status, 404, 'fs: dotfiles ignored by default');
  const up = await get(a.port, '/deep/../../x');
  t.equal(up.status, 403, '.. segments: 403 through the error handler');
  t.equal((await get(a.port, '/a.txt', {}, 'POST')).status, 404, 'other methods are not routed');
});

t.test('hooks run before and after, and the request is logged with its status', async (t) => {
  const a = await app({ prefix: '/' });
  t.teardown(a.close);
  await get(a.port, '/a.txt');
  await get(a.port, '/missing');
  // onResponse runs on the raw response's 'finish': give it a turn.
  await new Promise((r) => setTimeout(r, 50));
  t.same(a.events.slice(0, 3), ['onRequest /a.txt', 'preHandler /a.txt', 'onResponse /a.txt 200'],
    'onRequest and preHandler before; onResponse after, with the status sent');
  // A miss goes through Fastify's not-found handling, which runs its own preHandler hooks.
  t.equal(a.events[3], 'onRequest /missing');
  t.equal(a.events.at(-1), 'onResponse /missing 404', 'onResponse last, with the 404');
  const done = a.lines.filter((l) => l.msg === 'request completed');
  t.equal(done.length, 2, 'one "request completed" line per request');
  t.equal((done[0]!.res as { statusCode: number }).statusCode, 200);
  t.equal(typeof done[0]!.responseTime, 'number');
  t.equal((done[1]!.res as { statusCode: number }).statusCode, 404);
});

t.test('reply.header() values set before are sent; setHeaders runs', async (t) => {
  const a = await app({ prefix: '/', setHeaders: (res) => res.setHeader('x-from-setheaders', '1') }, (f) => {
    f.addHook('preHandler', async (_req, reply) => { void reply.header('x-request-header', 'kept'); });
  });
  t.teardown(a.close);
  const r = await get(a.port, '/a.txt');
  t.equal(r.headers['x-request-header'], 'kept');
  t.equal(r.headers['x-from-setheaders'], '1');
});

t.test('precompressed variants through the plugin', async (t) => {
  const a = await app({ prefix: '/', precompressed: true });
  t.teardown(a.close);
  const r = await get(a.port, '/page.html', { 'accept-encoding': 'gzip, br' });
  t.equal(r.headers['content-encoding'], 'br', 'fs: .br at the highest priority');
  t.equal(r.headers['content-type'], 'text/html; charset=utf-8', 'the original type');
  t.equal(r.headers.vary, 'Accept-Encoding');
  const plain = await get(a.port, '/page.html');
  t.equal(plain.body, '<p>page</p>');
  t.equal(plain.headers.vary, 'Accept-Encoding', 'fs: Vary also on the uncompressed answer');
});

t.test('reply.sendFile: below the root, another root, options, a miss', async (t) => {
  const a = await app({ prefix: '/static' }, (f) => {
    f.get('/doc', (_req, reply) => reply.sendFile('a.txt'));
    f.get('/doc-async', async (_req, reply) => reply.sendFile('/deep/path/b.txt'));
    f.get('/other', (_req, reply) => reply.sendFile('elsewhere.txt', other));
    f.get('/cached', (_req, reply) => reply.sendFile('a.txt', { maxAge: '1h', immutable: true }));
    f.get('/gone', (_req, reply) => reply.sendFile('gone.txt'));
    f.get('/escape', (_req, reply) => reply.sendFile('../etc/passwd'));
  });
  t.teardown(a.close);
  t.equal((await get(a.port, '/doc')).body, 'alpha beta gamma', 'fs: reply.sendFile from the plugin root');
  t.equal((await get(a.port, '/doc-async')).body, 'bee', 'returned from an async handler');
  t.equal((await get(a.port, '/other')).body, 'from the other root', 'fs: reply.sendFile with a root');
  t.equal((await get(a.port, '/cached')).headers['cache-control'], 'public, max-age=3600, immutable', 'fs: options per call');
  const gone = await get(a.port, '/gone');
  t.equal(gone.status, 404);
  t.equal(gone.body, 'not found: /gone', 'a missing file goes to the not-found handler');
  t.equal((await get(a.port, '/escape')).status, 403, 'confinement holds for sendFile');
});

t.test('bad options fail the registration, clearly', async (t) => {
  await t.rejects((async () => {
    const f = Fastify();
    await f.register(pagewarmStatic, { root: 42 } as never);
    await f.ready();
  })(), { code: 'ERR_INVALID_ARG_TYPE' }, 'root must be a string');
  await t.rejects((async () => {
    const f = Fastify();
    await f.register(pagewarmStatic, { root, maxAge: 'forever' });
    await f.ready();
  })(), { code: 'ERR_INVALID_ARG_VALUE' });
  await t.rejects((async () => {
    const f = Fastify();
    await f.register(pagewarmStatic, { root, prefix: 'static' });
    await f.ready();
  })(), { code: 'ERR_INVALID_ARG_VALUE' }, 'a prefix must start with /');
  await t.rejects((async () => {
    const f = Fastify();
    await f.register(pagewarmStatic, { root, prefix: '/a' });
    await f.register(pagewarmStatic, { root, prefix: '/b' });
    await f.ready();
  })(), { code: 'ERR_INVALID_ARG_VALUE', message: /decorateReply: false/ }, 'a second decorator collides, clearly; decorateReply: false avoids it');
  const f = Fastify();
  await f.register(pagewarmStatic, { root, prefix: '/a' });
  await f.register(pagewarmStatic, { root: other, prefix: '/b', decorateReply: false });
  await f.listen({ port: 0, host: '127.0.0.1' });
  t.teardown(() => f.close());
  const port = (f.server.address() as { port: number }).port;
  t.equal((await get(port, '/b/elsewhere.txt')).body, 'from the other root', 'two instances under two prefixes');
});

t.test('the subpath export: CommonJS and ESM, and pagewarm alone never loads fastify code', async (t) => {
  const { spawnSync } = await import('node:child_process');
  const cwd = join(__dirname, '..');
  const cjs = spawnSync(process.execPath, ['-e', "const p = require('pagewarm/fastify'); console.log(typeof p.default, p.default === p.pagewarmStatic)"], { cwd, encoding: 'utf8' });
  t.equal(cjs.stdout.trim(), 'function true', cjs.stderr);
  const esm = spawnSync(process.execPath, ['--input-type=module', '-e', "import p, { pagewarmStatic } from 'pagewarm/fastify'; console.log(typeof p, p === pagewarmStatic)"], { cwd, encoding: 'utf8' });
  t.equal(esm.stdout.trim(), 'function true', esm.stderr);
  const alone = spawnSync(process.execPath, ['-e', "require('pagewarm'); console.log(Object.keys(require.cache).filter((k) => /fastify/.test(k)).length)"], { cwd, encoding: 'utf8' });
  t.equal(alone.stdout.trim(), '0');
});
