/**
 * The Node HTTP servers the http benchmark compares, one per process:
 *
 *   pagewarm        pagewarm's serveFile, defaults: its open-file cache on, small
 *                   resident bodies read on the JS thread and written with the
 *                   headers in one write, others zero-copy
 *   pagewarm-revalidate  serveFile with `cache: { revalidateMs: 1000 }`: a hit
 *                   skips the revalidating stat for a second after the last one
 *   pagewarm-nocache  serveFile with `cache: false`: open, confinement check,
 *                   fstat and close per request, every body zero-copy
 *   send            pillarjs/send: send(req, path, { root }).pipe(res)
 *   fastify-static  fastify + @fastify/static
 *   stream          plain http + fs.stat + fs.createReadStream(path).pipe(res)
 *   memory          plain http serving files <= 1 MiB from a bounded in-memory
 *                   cache (64 MiB), larger ones with createReadStream: the
 *                   "cache small hot files" design, for comparison. Each hit is
 *                   revalidated as serveFile's cache is (statSync, bigint:
 *                   dev, ino, size, mtime and ctime in ns; reloaded on change),
 *                   so it costs what a correct memory cache costs; no
 *                   validators or ranges
 *   fastpath        an experiment with pagewarm's public calls, to measure a
 *                   design for serveFile: descriptors of hot files kept open
 *                   (like nginx's open_file_cache), and a small (<= 1 MiB)
 *                   range that cachestat says is resident sent with
 *                   transferToSync straight from the JS thread into the
 *                   non-blocking socket (no thread hop, no libuv job); anything
 *                   else goes to serveFile. Not a complete server (no
 *                   validators, no ranges).
 *
 *   ceiling         Node's own ceiling for a static response: plain http answering
 *                   from bodies read once at first request and kept (no stat, no
 *                   revalidation) with res.end(buffer) and the same headers
 *                   serveFile sends (Content-Type, Content-Length, ETag,
 *                   Last-Modified, Accept-Ranges, Cache-Control); files > 1 MiB
 *                   go through createReadStream
 *   express-serve-static  Express 5 + serve-static (copies through JS)
 *   express-pagewarm  Express 5 + pagewarm's serveStatic
 *   fastify-pagewarm  Fastify 5 + pagewarm/fastify
 *   express-ceiling, fastify-ceiling  each framework's own ceiling: the
 *                   ceiling handler's answer (a kept buffer) from inside the
 *                   framework (Express middleware; Fastify route with
 *                   reply.headers().send(buffer))
 *
 * Forked with IPC: sends {type:'listening', port} and exits on disconnect.
 * usage: bench/http/server.ts KIND ROOT
 */
import { createReadStream, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join, normalize } from 'node:path';
import * as pw from '../../lib/index';

/** serveFile, when it can go zero-copy here (else the comparison is moot). */
export const serveFile = pw.capabilities().zeroCopySend ? pw.serveFile : undefined;

export const KINDS = [
  'pagewarm', 'pagewarm-revalidate', 'pagewarm-nocache', 'send', 'fastify-static', 'stream', 'memory', 'fastpath', 'ceiling',
  'express-serve-static', 'express-pagewarm', 'fastify-pagewarm', 'express-ceiling', 'fastify-ceiling',
] as const;
export type Kind = (typeof KINDS)[number];

function pathOf(req: IncomingMessage, root: string): string | null {
  const p = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
  const full = normalize(join(root, p));
  return full.startsWith(root) ? full : null;
}

function notFound(res: ServerResponse): void {
  res.statusCode = 404;
  res.end();
}

function streamHandler(root: string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = pathOf(req, root);
    if (!path) return notFound(res);
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      return notFound(res);
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
    createReadStream(path).pipe(res);
  };
}

function memoryHandler(root: string) {
  const cache = new Map<string, { body: Buffer; id: string }>();
  let cached = 0;
  const LIMIT = 64 * 1024 * 1024;
  const fallback = streamHandler(root);
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = pathOf(req, root);
    if (!path) return notFound(res);
    const st = statSync(path, { bigint: true, throwIfNoEntry: false });
    if (!st) {
      const gone = cache.get(path);
      if (gone) {
        cached -= gone.body.length;
        cache.delete(path);
      }
      return notFound(res);
    }
    const id = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    let entry = cache.get(path);
    if (entry && entry.id !== id) {
      cached -= entry.body.length;
      cache.delete(path);
      entry = undefined;
    }
    let body = entry?.body;
    if (!body) {
      if (st.size > 1024 * 1024) return fallback(req, res);
      body = readFileSync(path);
      if (cached + body.length <= LIMIT) {
        cache.set(path, { body, id });
        cached += body.length;
      }
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  };
}

function fastPathHandler(root: string) {
  const open = new Map<string, { fd: number; size: number }>();
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = pathOf(req, root);
    if (!path || !serveFile) return notFound(res);
    let f = open.get(path);
    if (!f) {
      try {
        const fd = openSync(path, 'r');
        f = { fd, size: fstatSync(fd).size };
        open.set(path, f);
      } catch {
        return notFound(res);
      }
    }
    const r = f.size <= 1024 * 1024 ? pw.residencySync(f.fd, 0, f.size) : null;
    const socket = req.socket as unknown as { _handle?: { fd?: number }; writableLength: number };
    if (!r || r.residentPages !== r.pages || typeof socket._handle?.fd !== 'number') {
      serveFile(req, res, req.url ?? '/', { root }).catch(() => res.destroy());
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': f.size });
    res.flushHeaders();
    const send = () => {
      try {
        pw.transferToSync(socket._handle!.fd!, f!.fd, 0, f!.size);
        res.end();
      } catch {
        res.destroy();
      }
    };
    if (socket.writableLength === 0) send();
    else req.socket.write('', send);
  };
}

function ceilingHandler(root: string) {
  const bodies = new Map<string, { body: Buffer; headers: Record<string, string | number> }>();
  const fallback = streamHandler(root);
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = pathOf(req, root);
    if (!path) return notFound(res);
    let entry = bodies.get(path);
    if (!entry) {
      const st = statSync(path, { throwIfNoEntry: false });
      if (!st) return notFound(res);
      if (st.size > 1024 * 1024) return fallback(req, res);
      const body = readFileSync(path);
      entry = {
        body,
        headers: {
          'content-type': pw.contentType(path), 'content-length': body.length,
          etag: `W/"${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`, 'last-modified': st.mtime.toUTCString(),
          'accept-ranges': 'bytes', 'cache-control': 'public, max-age=0',
        },
      };
      bodies.set(path, entry);
    }
    res.writeHead(200, entry.headers);
    res.end(entry.body);
  };
}

export async function startServer(kind: Kind, root: string): Promise<{ port: number; close: () => Promise<void> }> {
  if (kind === 'fastify-static' || kind === 'fastify-pagewarm' || kind === 'fastify-ceiling') {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const fastify = require('fastify')({ logger: false });
    if (kind === 'fastify-static') fastify.register(require('@fastify/static'), { root });
    else if (kind === 'fastify-pagewarm') fastify.register(require('../../lib/fastify/index').default, { root });
    else {
      const ceiling = ceilingHandler(root);
      fastify.get('/*', (req: { raw: IncomingMessage }, reply: { hijack(): void; raw: ServerResponse }) => {
        reply.hijack();
        ceiling(req.raw, reply.raw);
      });
    }
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    return { port: fastify.server.address().port, close: () => fastify.close() };
  }
  let handler: (req: IncomingMessage, res: ServerResponse) => void;
  if (kind === 'express-serve-static' || kind === 'express-pagewarm' || kind === 'express-ceiling') {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const app = require('express')();
    app.use(kind === 'express-pagewarm' ? pw.serveStatic(root) : kind === 'express-ceiling' ? ceilingHandler(root) : require('serve-static')(root));
    handler = app;
  } else if (kind === 'ceiling') {
    handler = ceilingHandler(root);
  } else if (kind === 'pagewarm') {
    if (!serveFile) throw new Error('pagewarm cannot send zero-copy here');
    handler = (req, res) => {
      serveFile(req, res, req.url ?? '/', { root }).catch(() => res.destroy());
    };
  } else if (kind === 'pagewarm-revalidate') {
    if (!serveFile) throw new Error('pagewarm cannot send zero-copy here');
    const options = { root, cache: { revalidateMs: 1000 } };
    handler = (req, res) => {
      serveFile(req, res, req.url ?? '/', options).catch(() => res.destroy());
    };
  } else if (kind === 'pagewarm-nocache') {
    if (!serveFile) throw new Error('pagewarm cannot send zero-copy here');
    handler = (req, res) => {
      serveFile(req, res, req.url ?? '/', { root, cache: false }).catch(() => res.destroy());
    };
  } else if (kind === 'send') {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const send = require('send') as (req: IncomingMessage, path: string, options: { root: string }) => NodeJS.ReadableStream & { pipe(res: ServerResponse): void };
    handler = (req, res) => send(req, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname), { root }).pipe(res);
  } else if (kind === 'stream') {
    handler = streamHandler(root);
  } else if (kind === 'fastpath') {
    handler = fastPathHandler(root);
  } else {
    handler = memoryHandler(root);
  }
  const server: Server = createServer(handler);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return { port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Command line: KIND ROOT; reports {type:'listening', port} over IPC. */
export async function main(): Promise<void> {
  const [kind, root] = process.argv.slice(2) as [Kind, string];
  try {
    const { port } = await startServer(kind, root);
    process.send?.({ type: 'listening', port, pid: process.pid });
    process.on('disconnect', () => process.exit(0));
  } catch (err) {
    console.error(`http server ${kind}: ${(err as Error).message}`);
    process.exit(1);
  }
}

if (require.main === module) void main();
