// The Node internals pagewarm relies on (the socket hold of lib/send/hold.ts,
// _handle.fd, the order in which http.ServerResponse writes its headers),
// each simulated missing in a child process: every call must still deliver
// the right bytes in the right order, by copying, with one process warning
// (PAGEWARM_NODE_INTERNALS) however many calls follow. A child with nothing
// simulated proves the checks pass on the running Node: no warning, and
// zero-copy wherever the build has it.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { capabilities } from '../lib/index';
import { compiledLib, randomFile, scratch, MiB } from './send-helpers';

const dir = scratch('pagewarm-internals-');
const file = randomFile(join(dir, 'f'), MiB + 4321);
const script = join(dir, 'child.js');
const zeroCopy = capabilities().zeroCopySend;

/** What the child does: sends and HTTP responses under one simulation, reported as JSON on stdout. */
fs.writeFileSync(
  script,
  String.raw`
const [lib, mode, file] = process.argv.slice(2);
const net = require('node:net'), http = require('node:http'), stream = require('node:stream'), fs = require('node:fs');
const warnings = [];
process.on('warning', (w) => warnings.push({ code: w.code, message: w.message }));
if (mode === 'chunks') {
  // A Node whose Writable copies each chunk before _write sees it.
  const write = stream.Duplex.prototype.write;
  stream.Duplex.prototype.write = function (chunk, encoding, cb) {
    return write.call(this, Buffer.isBuffer(chunk) ? Buffer.from(chunk) : chunk, encoding, cb);
  };
}
if (mode === 'flush') {
  // A Node whose flushHeaders() leaves the headers in the response.
  http.ServerResponse.prototype.flushHeaders = function () {};
}
const pw = require(lib);
const bytes = fs.readFileSync(file);
const out = { warnings, sends: [], streams: [], http: [] };

function dropFd(handle) {
  // A Node whose socket handles have no fd (the prototype's getter cannot be deleted: shadowed).
  Object.defineProperty(handle, 'fd', { value: undefined });
}

/** One connection: serve(sock) writes to it; resolves with what the peer received. */
function exchange(serve) {
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => {
      if (mode === 'fd') dropFd(sock._handle);
      serve(sock);
    });
    server.listen(0, '127.0.0.1', () => {
      const c = net.connect(server.address().port, '127.0.0.1');
      const got = [];
      c.on('data', (d) => got.push(d));
      c.on('error', reject);
      c.on('end', () => { server.close(); c.end(); resolve(Buffer.concat(got)); });
    });
  });
}

const settle = (p) => p.then((r) => ({ ok: r }), (e) => ({ err: { name: e.name, code: e.code, bytesSent: e.bytesSent } }));

(async () => {
  // Writes before, between and after two sends, and end() during them.
  let a, b;
  const got1 = await exchange((sock) => {
    sock.write('head|');
    a = settle(pw.sendFile(sock, file));
    sock.write('|mid|');
    b = settle(pw.sendFile(sock, file, { offset: 10, length: 100 }));
    sock.write('|tail');
    sock.end();
  });
  out.sends.push(await a, await b);
  const want1 = Buffer.concat([Buffer.from('head|'), bytes, Buffer.from('|mid|'), bytes.subarray(10, 110), Buffer.from('|tail')]);
  out.streams.push(got1.equals(want1));

  // A queued send aborted: it rejects with nothing sent, the socket goes on.
  let c, d;
  const got2 = await exchange((sock) => {
    sock.write('a');
    c = settle(pw.sendFile(sock, file));
    const ac = new AbortController();
    d = settle(pw.sendFile(sock, file, { signal: ac.signal }));
    ac.abort();
    sock.write('b');
    sock.end();
  });
  out.sends.push(await c, await d);
  out.streams.push(got2.equals(Buffer.concat([Buffer.from('a'), bytes, Buffer.from('b')])));

  // HTTP: serveFile (twice: the warning is told once) and sendFileResponse.
  const served = [];
  const server = http.createServer((req, res) => {
    if (mode === 'fd') dropFd(res.socket._handle);
    const p = req.url === '/response' ? pw.sendFileResponse(res, file) : pw.serveFile(req, res, file);
    served.push(settle(p));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  for (const path of ['/serve', '/serve', '/response']) {
    const body = await new Promise((resolve, reject) => {
      http.get({ port: server.address().port, host: '127.0.0.1', path, agent: false }, (res) => {
        const got = [];
        res.on('data', (x) => got.push(x));
        res.on('end', () => resolve({ status: res.statusCode, length: Number(res.headers['content-length']), body: Buffer.concat(got) }));
      }).on('error', reject);
    });
    out.streams.push(body.status === 200 && body.length === bytes.length && body.body.equals(bytes));
  }
  server.close();
  out.http = await Promise.all(served); // the peer may have the whole body before the call settles
  process.stdout.write(JSON.stringify(out));
})().catch((err) => { console.error(err); process.exit(1); });
`,
);

interface Settled {
  ok?: { bytes: number; zeroCopy: boolean; statusCode?: number };
  err?: { name: string; code: string; bytesSent: number };
}
interface Report {
  warnings: Array<{ code: string; message: string }>;
  sends: Settled[];
  streams: boolean[];
  http: Settled[];
}

function run(mode: string): Report {
  const r = spawnSync(process.execPath, [script, compiledLib(), mode, file], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`child (${mode}) exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Report;
}

function checkDelivery(t: Test, report: Report, sendsZeroCopy: boolean, httpZeroCopy: boolean): void {
  t.same(report.streams, [true, true, true, true, true], 'every byte arrived, in order: two socket exchanges, three HTTP bodies');
  const [a, b, c, d] = report.sends;
  t.same(a.ok, { bytes: fs.statSync(file).size, zeroCopy: sendsZeroCopy }, 'the whole file');
  t.same(b.ok, { bytes: 100, zeroCopy: sendsZeroCopy }, 'the range');
  t.same(c.ok, { bytes: fs.statSync(file).size, zeroCopy: sendsZeroCopy }, 'the send before the aborted one');
  t.same(d.err, { name: 'AbortError', code: 'ABORT_ERR', bytesSent: 0 }, 'the queued send aborted with nothing sent');
  t.equal(report.http.length, 3);
  for (const r of report.http) t.match(r.ok, { bytes: fs.statSync(file).size, zeroCopy: httpZeroCopy }, 'HTTP body bytes and how they went');
}

const internalsWarnings = (r: Report): Array<{ code: string; message: string }> =>
  r.warnings.filter((w) => w.code === 'PAGEWARM_NODE_INTERNALS');

t.test('on the running Node, nothing is missing: no warning, zero-copy where the build has it', async (t) => {
  const r = run('none');
  t.same(internalsWarnings(r), [], `no PAGEWARM_NODE_INTERNALS warning on ${process.version}`);
  checkDelivery(t, r, zeroCopy, zeroCopy);
});

t.test('Writable hands _write a copy of the chunk: the hold is not used, sends copy through socket.write()', async (t) => {
  const r = run('chunks');
  const w = internalsWarnings(r);
  t.equal(w.length, 1, 'one warning for every call that followed');
  t.match(w[0]?.message, /the socket hold \(Writable did not hand _write\/_writev the chunks written\)/);
  t.match(w[0]?.message, new RegExp(`Node ${process.version.replace(/\./g, '\\.')}`), 'the warning names the Node version');
  checkDelivery(t, r, false, false);
});

// Skip reason (both below): on a build without zero-copy sends (the portable
// fallback) neither internal is ever asked for.
t.test("a socket handle without fd: sends copy", { skip: zeroCopy ? false : 'only sends that would be zero-copy ask for the descriptor' }, async (t) => {
  const r = run('fd');
  const w = internalsWarnings(r);
  t.equal(w.length, 1, 'one warning');
  t.match(w[0]?.message, /_handle\.fd/);
  checkDelivery(t, r, false, false);
});

t.test('flushHeaders() leaves the headers in the response: bodies go through res.write()', { skip: zeroCopy ? false : 'only zero-copy bodies bypass res.write()' }, async (t) => {
  const r = run('flush');
  const w = internalsWarnings(r);
  t.equal(w.length, 1, 'one warning');
  t.match(w[0]?.message, /flushHeaders\(\)/);
  checkDelivery(t, r, true, false);
});
