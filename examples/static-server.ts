/**
 * A static file server on pagewarm: GET and HEAD, single byte ranges,
 * ETag / Last-Modified with 304s, Content-Type by extension, confinement to
 * the root directory, keep-alive; file bodies go zero-copy from the page
 * cache to the socket, warmed and sent on pagewarm's threads (small files
 * already in the page cache are copied with the headers in one write, see
 * serveFile's `cache` option).
 *
 *   npm run example:static -- [root] [port]
 *   (that is: node dist/examples/static-server.js [root] [port], compiled by
 *   `npm install` / `npm run build:ts` from this file)
 *
 * root defaults to the current directory, port to 8080 (0 picks a free one).
 * A request for a directory path ending in "/" serves its index.html.
 * Set QUIET=1 to silence the one-line-per-request log.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { serveFile, capabilities } from 'pagewarm';

const root = resolve(process.argv[2] ?? '.');
const port = Number(process.argv[3] ?? 8080);
const quiet = process.env.QUIET === '1';

if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`usage: static-server [root] [port]   (bad port: ${process.argv[3]})`);
  process.exit(2);
}

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  const cut = url.search(/[?#]/);
  const pathname = cut < 0 ? url : url.slice(0, cut);
  const path = pathname.endsWith('/') ? `${pathname}index.html` : pathname;
  const started = process.hrtime.bigint();
  serveFile(req, res, path, { root, maxAge: '1m' }).then(
    (r) => {
      if (quiet) return;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      // Bodies go zero-copy, except small resident ones, which serveFile's
      // open-file cache reads on the event loop and writes with the headers.
      const how = r.bytes === 0 ? '' : r.zeroCopy ? ' zero-copy' : ' copied';
      console.log(`${req.method} ${url} ${r.statusCode} ${r.bytes}B${how} ${ms.toFixed(1)}ms`);
    },
    (err: Error & { code?: string; bytesSent?: number }) => {
      // The client went away mid-body (the connection is already closed), or
      // a bug: log it, keep serving.
      if (!quiet) console.log(`${req.method} ${url} aborted: ${err.code ?? err.message} after ${err.bytesSent ?? 0}B`);
    },
  );
});

server.listen(port, () => {
  const { port: actual } = server.address() as AddressInfo;
  const mode = capabilities().zeroCopySend ? 'zero-copy' : `copying (${capabilities().fallbackReason})`;
  console.log(`serving ${root} at http://127.0.0.1:${actual}/ (${mode})`);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
  });
}
