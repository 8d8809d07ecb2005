// serveFile's trust boundaries: confinement to root through the open-file
// cache (a proof made for one root never stands for another), dotfiles,
// and the confinement check done on the opened descriptor rather than on a
// name that can change after the open.
import t from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { serveFile, closeServeFileCache, type ServeFileOptions } from '../lib/index';
import { descriptorRealPath } from '../lib/core/paths';
import { scratch } from './send-helpers';

t.setTimeout(60_000);

// base/
//   secret.txt               outside both roots
//   srv/                     the outer root
//     inner-secret.txt       inside the outer root only
//     www/                   the inner root
//       page.txt
//       link.txt -> ../inner-secret.txt   (inside outer, outside inner)
//       .env, .git/config, .well-known/x.txt, sub/.hidden/y.txt, a.b/c.txt
const base = fs.realpathSync(scratch('pagewarm-httpsec-'));
const outer = join(base, 'srv');
const inner = join(outer, 'www');
fs.mkdirSync(join(inner, '.git'), { recursive: true });
fs.mkdirSync(join(inner, '.well-known'));
fs.mkdirSync(join(inner, 'sub', '.hidden'), { recursive: true });
fs.mkdirSync(join(inner, 'a.b'));
fs.writeFileSync(join(base, 'secret.txt'), 'OUTSIDE-SECRET\n');
fs.writeFileSync(join(outer, 'inner-secret.txt'), 'OUTER-ONLY-SECRET\n');
fs.writeFileSync(join(inner, 'page.txt'), 'page\n');
fs.symlinkSync('../inner-secret.txt', join(inner, 'link.txt'));
fs.writeFileSync(join(inner, '.env'), 'PASSWORD=hunter2\n');
fs.writeFileSync(join(inner, '.git', 'config'), '[core]\n');
fs.writeFileSync(join(inner, '.well-known', 'x.txt'), 'well known\n');
fs.writeFileSync(join(inner, 'sub', '.hidden', 'y.txt'), 'hidden\n');
fs.writeFileSync(join(inner, 'a.b', 'c.txt'), 'dotted directory name, not a dotfile\n');

// Each request carries the serveFile call to make: path and options.
type Call = { path: string; options?: ServeFileOptions };
const calls = new Map<string, Call>();
let nextId = 0;
const server = http.createServer((req, res) => {
  const call = calls.get(req.url ?? '');
  if (!call) {
    res.statusCode = 599;
    res.end();
    return;
  }
  serveFile(req, res, call.path, call.options).catch((err) => {
    res.destroy(err as Error);
  });
});
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

/** One GET on a fresh connection, answered by `serveFile(req, res, path, options)`. */
function serve(path: string, options?: ServeFileOptions): Promise<{ status: number; body: string }> {
  const url = `/call-${nextId++}`;
  calls.set(url, { path, options });
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: url, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

t.test('a confinement proof made for one root never stands for another (cache on and off)', async (t) => {
  for (const cache of [true, false, { maxEntries: 7 }]) {
    const label = `cache: ${JSON.stringify(cache)}`;

    // Outer root first: the link resolves inside it, so 200; then the inner
    // root, where the same file (same cache key) lies outside: 404.
    closeServeFileCache();
    let r = await serve('/www/link.txt', { root: outer, cache });
    t.same(r, { status: 200, body: 'OUTER-ONLY-SECRET\n' }, `${label}: outer root serves the link`);
    r = await serve('/link.txt', { root: inner, cache });
    t.equal(r.status, 404, `${label}: inner root right after: refused`);
    t.notMatch(r.body, /SECRET/, `${label}: no secret in the body`);
    r = await serve('/link.txt', { root: inner, cache });
    t.equal(r.status, 404, `${label}: inner root again: refused`);
    r = await serve('/www/link.txt', { root: outer, cache });
    t.same(r, { status: 200, body: 'OUTER-ONLY-SECRET\n' }, `${label}: outer root again: still served`);

    // Inner root first, then the outer one.
    closeServeFileCache();
    r = await serve('/link.txt', { root: inner, cache });
    t.equal(r.status, 404, `${label}: inner root first: refused`);
    r = await serve('/www/link.txt', { root: outer, cache });
    t.same(r, { status: 200, body: 'OUTER-ONLY-SECRET\n' }, `${label}: then the outer root serves it`);
    r = await serve('/link.txt', { root: inner, cache });
    t.equal(r.status, 404, `${label}: and the inner root still refuses it`);

    // No root first (a file system path: nothing to check), then a root.
    closeServeFileCache();
    r = await serve(join(inner, 'link.txt'), { cache });
    t.same(r, { status: 200, body: 'OUTER-ONLY-SECRET\n' }, `${label}: without root the path is served as it is`);
    r = await serve('/link.txt', { root: inner, cache });
    t.equal(r.status, 404, `${label}: then with the inner root: refused`);

    // A file inside both roots is served under each, in any order.
    closeServeFileCache();
    for (const [path, root] of [['/www/page.txt', outer], ['/page.txt', inner], ['/www/page.txt', outer], ['/page.txt', inner]]) {
      r = await serve(path, { root, cache });
      t.same(r, { status: 200, body: 'page\n' }, `${label}: ${path} under ${root === outer ? 'outer' : 'inner'} root`);
    }
  }
});

t.test('a relative root means the same directory to the path and to the confinement check', async (t) => {
  // The request path is joined to root resolved at its first use; the real
  // root it is checked against must be that same directory, also when the
  // check resolves root again (after a failed check) from another cwd.
  const cwd = process.cwd();
  t.teardown(() => process.chdir(cwd));
  const elsewhere = join(base, 'elsewhere');
  fs.mkdirSync(join(elsewhere, 'srv'), { recursive: true });
  fs.symlinkSync(outer, join(elsewhere, 'srv', 'www')); // 'srv/www' from here is the outer root
  process.chdir(base);
  closeServeFileCache();
  const root = 'srv/www';
  let r = await serve('/page.txt', { root, cache: false });
  t.same(r, { status: 200, body: 'page\n' });
  process.chdir(elsewhere);
  r = await serve('/page.txt', { root, cache: false });
  t.same(r, { status: 200, body: 'page\n' }, 'the root resolved at first use is still the one served from');
  r = await serve('/link.txt', { root, cache: false });
  t.equal(r.status, 404, 'and the link out of it is still refused');
  t.notMatch(r.body, /SECRET/);
});

t.test('dotfiles: ignored by default (404), denied (403), or allowed', async (t) => {
  closeServeFileCache();
  const dotted = ['/.env', '/.git/config', '/.well-known/x.txt', '/sub/.hidden/y.txt', '/%2eenv', '/sub/%2Ehidden/y.txt'];
  for (const cache of [true, false]) {
    for (const path of dotted) {
      let r = await serve(path, { root: inner, cache });
      t.equal(r.status, 404, `default: ${path} is 404 (cache ${cache})`);
      t.notMatch(r.body, /hunter2|core|well known|hidden/);
      r = await serve(path, { root: inner, cache, dotfiles: 'ignore' });
      t.equal(r.status, 404, `ignore: ${path} is 404 (cache ${cache})`);
      r = await serve(path, { root: inner, cache, dotfiles: 'deny' });
      t.equal(r.status, 403, `deny: ${path} is 403 (cache ${cache})`);
      t.notMatch(r.body, /hunter2|core|well known|hidden/);
      r = await serve(path, { root: inner, cache, dotfiles: 'allow' });
      t.equal(r.status, 200, `allow: ${path} is 200 (cache ${cache})`);
      // An 'allow' response that the cache kept never serves an 'ignore' request.
      r = await serve(path, { root: inner, cache });
      t.equal(r.status, 404, `default again after allow: ${path} is 404 (cache ${cache})`);
    }
  }
  // Not dotfiles: a dot inside a name, and the root's own path (only the
  // request path relative to root counts).
  let r = await serve('/a.b/c.txt', { root: inner });
  t.equal(r.status, 200, 'a dot inside a segment is not a dotfile');
  r = await serve('/./page.txt', { root: inner });
  t.equal(r.status, 200, 'a "." segment is not a dotfile');
  const dotRoot = join(base, '.site');
  fs.mkdirSync(dotRoot, { recursive: true });
  fs.writeFileSync(join(dotRoot, 'index.txt'), 'in a dot root\n');
  r = await serve('/index.txt', { root: dotRoot });
  t.same(r, { status: 200, body: 'in a dot root\n' }, "root's own dot segments do not count");
  // Without root the whole path is the request path.
  r = await serve(join(inner, '.env'));
  t.equal(r.status, 404, 'without root: a dot segment in the path is 404 by default');
  r = await serve(join(inner, '.env'), { dotfiles: 'allow' });
  t.equal(r.status, 200, 'without root, allowed');
});

t.test('dotfiles option is validated', async (t) => {
  const req = { method: 'GET', headers: {} } as http.IncomingMessage;
  const res = new http.ServerResponse(req);
  for (const bad of ['hidden', 'IGNORE', '', 'true']) {
    await t.rejects(serveFile(req, res, '/page.txt', { root: inner, dotfiles: bad as 'allow' }), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_VALUE',
      message: /options\.dotfiles/,
    });
  }
  for (const bad of [true, 1, null, {}]) {
    await t.rejects(serveFile(req, res, '/page.txt', { root: inner, dotfiles: bad as unknown as 'allow' }), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
      message: /options\.dotfiles/,
    });
  }
  t.equal(res.headersSent, false, 'nothing was written');
});

t.test('the real path is taken from the opened descriptor, not from a name that can change', async (t) => {
  // A name that is swapped after the open must not lend its new target's
  // location to the file actually opened.
  const dir = join(base, 'race');
  const root = join(dir, 'root');
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(join(root, 'inside.txt'), 'inside\n');
  const name = join(root, 'swap.txt');
  const point = (to: string): void => {
    fs.rmSync(`${name}.new`, { force: true });
    fs.symlinkSync(to, `${name}.new`);
    fs.renameSync(`${name}.new`, name);
  };
  for (const viaProc of [false, true]) {
    point(join(base, 'secret.txt'));
    const fd = fs.openSync(name, 'r'); // the file outside root
    try {
      point(join(root, 'inside.txt')); // the name now leads inside root
      const real = await descriptorRealPath(fd, name, viaProc);
      t.not(real, join(root, 'inside.txt'), `viaProc ${viaProc}: the swapped name's target is not the opened file's path`);
      if (viaProc) t.equal(real, join(base, 'secret.txt'), 'the kernel names the opened file');
      else t.equal(real, undefined, 'the name no longer names the opened file: no path');
    } finally {
      fs.closeSync(fd);
    }
    // An unchanged name gives the file's real path either way.
    const fd2 = fs.openSync(name, 'r');
    try {
      t.equal(await descriptorRealPath(fd2, name, viaProc), join(root, 'inside.txt'), `viaProc ${viaProc}: unchanged name`);
    } finally {
      fs.closeSync(fd2);
    }
  }
});

t.test('serveFile off Linux: a symlink swapped between the open and the check is refused', async (t) => {
  // Where there is no descriptor path (process.platform other than linux),
  // the check used to realpath() the name after the open. Swap the link
  // right before that realpath runs: the file opened is outside root.
  const dir = join(base, 'race2');
  const root = join(dir, 'root');
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(join(root, 'inside.txt'), 'inside\n');
  const name = join(root, 'swap.txt');
  fs.symlinkSync(join(base, 'secret.txt'), name);
  // The module object itself (an ES namespace import would be read-only).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fsp = require('node:fs/promises') as { realpath: typeof fs.promises.realpath };
  const realpathBefore = fsp.realpath;
  const platform = Object.getOwnPropertyDescriptor(process, 'platform')!;
  let swapped = 0;
  fsp.realpath = (async (p: fs.PathLike, o?: unknown) => {
    if (p === name && swapped === 0) {
      swapped++;
      fs.rmSync(name);
      fs.symlinkSync(join(root, 'inside.txt'), name);
    }
    return realpathBefore(p, o as fs.ObjectEncodingOptions);
  }) as typeof fsp.realpath;
  Object.defineProperty(process, 'platform', { ...platform, value: 'darwin' });
  t.teardown(() => {
    Object.defineProperty(process, 'platform', platform);
    fsp.realpath = realpathBefore;
  });
  const r = await serve('/swap.txt', { root, cache: false });
  Object.defineProperty(process, 'platform', platform);
  t.not(r.status, 200, 'not served');
  t.notMatch(r.body, /SECRET/, 'the outside file never reaches the client');
});
