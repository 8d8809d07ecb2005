/**
 * One server of the copying benchmark (bench/copying.ts), in its own process
 * so that its garbage collections are its own: serves FILE to every request
 * as KIND says, observes every GC (perf_hooks 'gc' entries), and on
 * disconnect reports the bytes served and the pauses.
 *
 * KIND: `pagewarm-https` serveFile over TLS (the body copied through the TLS
 * socket); `pagewarm-fallback` serveFile over plain HTTP on the portable
 * fallback (the parent sets PAGEWARM_FORCE_FALLBACK=1); `pagewarm-wrapped`
 * serveFile through a pass-through `res.write` wrapper, as compression
 * middleware installs (the body through res.write()); `stream-https` and
 * `stream-http`: `fs.createReadStream(file).pipe(res)`, Node's own copying.
 *
 * Forked with IPC: sends {type:'listening', port}; on disconnect sends
 * {type:'done', bytes, pauses} and exits.
 * usage: bench/copying/server.ts KIND FILE KEY CERT
 */
import { createReadStream, readFileSync, statSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { PerformanceObserver } from 'node:perf_hooks';
import * as pw from '../../lib/index';

export const KINDS = ['pagewarm-https', 'pagewarm-fallback', 'pagewarm-wrapped', 'stream-https', 'stream-http'] as const;
export type Kind = (typeof KINDS)[number];

export function main(): void {
  const [kind, file, key, cert] = process.argv.slice(2) as [Kind, string, string, string];
  if (!KINDS.includes(kind)) throw new Error(`unknown kind ${kind}`);
  const size = statSync(file).size;
  const pauses: number[] = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push(e.duration);
  }).observe({ entryTypes: ['gc'] });
  let bytes = 0;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (kind.startsWith('stream')) {
      res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
      res.on('finish', () => { bytes += size; });
      return;
    }
    if (kind === 'pagewarm-wrapped') {
      const write = res.write;
      res.write = function (this: http.ServerResponse, ...args: unknown[]) {
        return (write as (...a: unknown[]) => boolean).apply(this, args);
      } as typeof res.write;
    }
    pw.serveFile(req, res, file).then((r) => { bytes += r.bytes; }, () => undefined);
  };
  const tls = kind.endsWith('https');
  const server = tls ? https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, handler) : http.createServer(handler);
  server.listen(0, '127.0.0.1', () => process.send!({ type: 'listening', port: (server.address() as { port: number }).port }));
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: { type: string }) => {
    if (m.type === 'report') process.send!({ type: 'done', bytes, pauses, zeroCopy: pw.capabilities().zeroCopySend });
  });
}
