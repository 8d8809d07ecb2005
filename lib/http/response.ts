/**
 * Writing a file as an HTTP/1.x response: `sendFileResponse`, and the steps
 * `serveFile` shares with it (the status line and headers, a body zero-copy
 * to the socket or copied through `res.write()`, ending the response).
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { contentType } from './mime';
import { fstat } from './file-meta';
import { openSource, pinSource, sendOwnedFile, toSource, type Input, type SendFileResult } from '../send/socket';
import { invalidArgType, type CodedError } from '../core/errors';
import { toIntInRange, toOptions, toPosition, toSignal, type FileLike } from '../core/validate';
import { abortError } from '../send/transfer';
import { linkedSignal, whenAborted } from '../core/abort';
import type { Meter } from '../core/settle';
import { warnInternals } from '../core/node-internals';
import { holdSupported } from '../send/hold';
import { PIECE_BYTES, givePiece, takePiece } from '../core/piece-pool';

/** Options for {@link sendFileResponse}. */
export interface SendFileResponseOptions {
  /** Byte offset in the file to start at. Default 0. */
  offset?: number;
  /** Bytes to send. Default: to the end of the file. Clamped to the file's size. */
  length?: number;
  /** The status code, 200-599 (a RangeError `ERR_OUT_OF_RANGE` otherwise). Default 200. */
  statusCode?: number;
  /** Response headers, merged over those set with `res.setHeader()`. Content-Length is always set by pagewarm. */
  headers?: http.OutgoingHttpHeaders;
  /**
   * Aborts the response, at any stage: the promise rejects with an
   * `AbortError` whose `bytesSent` is the body bytes sent (zero-copy: that
   * left for the socket; copied: handed to `res.write()`). Aborted before
   * the status line was written (while the file opens, or while a pipelined
   * response waits for its connection), nothing is written and the response
   * is left to the caller (`bytesSent` 0); after, the connection is
   * destroyed, as the response can no longer be completed. One signal may
   * be shared by any number of concurrent responses.
   */
  signal?: AbortSignal;
}

/**
 * Sends a file (or `[offset, offset + length)` of it) as the whole response:
 * sets Content-Length (and Content-Type from the extension when `file` is a
 * path and no Content-Type was given), writes the status line and headers,
 * sends the body, and ends the response.
 *
 * On plain HTTP/1.x the body goes zero-copy from the page cache to the
 * socket, warmed and sent on pagewarm's threads (see `sendFile`); keep-alive
 * and pipelined requests on the connection keep working (a pipelined
 * response waits for the connection like any other). Over HTTPS the body is
 * copied through the TLS socket; for responses whose `write`/`end` were
 * replaced (compression middleware) and for HTTP/2 compatibility responses
 * it is written through `res.write()`. HEAD requests and 204/304 responses
 * get no body. Usable from Express handlers (`res`) and Fastify
 * (`reply.hijack()` then `reply.raw`).
 *
 * If the body cannot be completed (the client went away, the file shrank,
 * an abort) the connection is destroyed, as no valid response can follow.
 *
 * @param res The response, headers not yet sent.
 * @param file A path, a descriptor open for reading, or a FileHandle (a regular file).
 * @returns `{ bytes, zeroCopy }`: body bytes sent, and how.
 * @throws (as a rejection) TypeError / RangeError for bad arguments; `ERR_HTTP_HEADERS_SENT`;
 *   a system error opening the file (`ENOENT`, `EISDIR`, ...) before anything is written;
 *   the errors of `sendFile` (with `bytesSent`) when the body fails;
 *   `ERR_HTTP_CONTENT_LENGTH_MISMATCH` when the file ended before Content-Length bytes.
 */
export async function sendFileResponse(
  res: http.ServerResponse,
  file: FileLike | string,
  options?: SendFileResponseOptions,
): Promise<SendFileResult> {
  checkResponse(res);
  const source = toSource(file);
  const opts = toOptions<SendFileResponseOptions>(options);
  const offset = toPosition(opts.offset, 'options.offset', 0);
  const length = opts.length === undefined ? -1 : toPosition(opts.length, 'options.length', 0);
  const statusCode = opts.statusCode === undefined ? 200 : toIntInRange(opts.statusCode, 'options.statusCode', 200, 599);
  const headers = toHeaders(opts.headers);
  const signal = toSignal(opts.signal);
  if (signal?.aborted) throw abortError(signal, 0);
  if (res.headersSent) throw headersSent();

  const input = await openSource(pinSource(source)); // pinned before any await: the caller may close its fd
  try {
    if (signal?.aborted) throw abortError(signal, 0);
    const size = (await fstat(input.fd)).size;
    const start = Math.min(offset, size);
    const count = length < 0 ? size - start : Math.min(length, size - start);
    if (!hasHeader(headers, 'content-type') && !res.hasHeader('content-type') && 'path' in source) {
      headers['content-type'] = contentType(source.path);
    }
    return await respond(res, input, start, count, statusCode, headers, signal);
  } finally {
    await input.close();
  }
}

/**
 * Throws unless `res` looks like a response (`writeHead` and `end`).
 * @throws TypeError `ERR_INVALID_ARG_TYPE`.
 */
export function checkResponse(res: unknown): asserts res is http.ServerResponse {
  if (typeof res !== 'object' || res === null || typeof (res as http.ServerResponse).writeHead !== 'function' ||
      typeof (res as http.ServerResponse).end !== 'function') {
    throw invalidArgType('res', 'an instance of http.ServerResponse', res);
  }
}

/** The error for a response whose headers were already sent: `ERR_HTTP_HEADERS_SENT`. */
export function headersSent(): CodedError {
  return coded('ERR_HTTP_HEADERS_SENT', 'Cannot send a file response after the headers were sent to the client');
}

/**
 * Whether flushHeaders() queues the status line and headers on the socket at
 * once (a direct body is written after them): believed until a response
 * shows otherwise, then never again in this thread.
 */
let flushQueuesHeaders = true;

/**
 * After `res.flushHeaders()`: whether the headers reached the socket
 * (`socket.bytesWritten`, which counts bytes still buffered, moved past
 * `before`). When they did not, and the socket is still open, the running
 * Node writes headers some other way: one process warning, and every body
 * from then on goes through `res.write()`.
 */
function headersQueued(socket: net.Socket, before: number): boolean {
  if (socket.bytesWritten > before || socket.destroyed) return true; // a destroyed socket fails the send anyway
  flushQueuesHeaders = false;
  warnInternals('http.ServerResponse\'s flushHeaders()', 'response bodies are written through res.write() instead of zero-copy');
  return false;
}

/** Whether the body may bypass `res.write()` and go to the socket. */
export function directBody(res: http.ServerResponse): boolean {
  if (!flushQueuesHeaders || !holdSupported()) return false; // this Node's internals are not as relied on
  return unwrapped(res);
}

/**
 * Whether `res` is Node's own HTTP/1 response with its writing methods as
 * Node made them: then a `res.write()` callback means its chunk was handed
 * to the socket and written (or dropped with the connection), and the chunk
 * may be reused. Middleware that replaced write/end may keep the chunk and
 * call back at once; HTTP/2 compatibility responses and look-alikes are not
 * relied on either.
 */
function unwrapped(res: http.ServerResponse): boolean {
  if (!(res instanceof http.ServerResponse)) return false; // HTTP/2 compatibility, look-alikes
  for (const name of ['write', 'end', '_send', '_writeRaw']) {
    if (Object.prototype.hasOwnProperty.call(res, name)) return false; // middleware transforms the body
  }
  return true;
}

/** `res.end()`, resolved as {@link endResponse} resolves. */
export function ended(res: http.ServerResponse): Promise<void> {
  return endResponse(res, undefined);
}

/**
 * `res.end(body)`, resolved when its callback runs (`written` is called
 * first) or when the response closes, whichever comes first; no listener is
 * left on the response either way.
 */
export function endResponse(res: http.ServerResponse, body: Buffer | undefined, written?: () => void): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.removeListener('close', done);
      resolve();
    };
    res.once('close', done);
    const callback = (): void => {
      written?.();
      done();
    };
    if (body) res.end(body, callback);
    else res.end(callback);
  });
}

/**
 * Writes the status line and `headers` (Content-Length set to `count`,
 * except for 1xx, 204 and 304; Transfer-Encoding removed) and `count` bytes
 * of `input` from `offset` as the body (none for HEAD, 1xx, 204 and 304),
 * then ends the response. The body goes zero-copy to the socket when
 * {@link directBody} allows, else through `res.write()`. `input` stays the
 * caller's to close.
 * @returns Body bytes sent, and whether zero-copy.
 * @throws (as a rejection) what {@link sendFileResponse} throws for the body
 *   (`AbortError`, `ERR_HTTP_HEADERS_SENT`, the errors of `sendFile`,
 *   `ERR_HTTP_CONTENT_LENGTH_MISMATCH`); a failure after the headers were
 *   written destroys the connection first.
 */
export async function respond(
  res: http.ServerResponse,
  input: Input,
  offset: number,
  count: number,
  statusCode: number,
  headers: http.OutgoingHttpHeaders,
  signal: AbortSignal | undefined,
  meter?: Meter,
): Promise<SendFileResult> {
  if (signal?.aborted) throw abortError(signal, 0);
  delete headers['transfer-encoding'];
  const method = res.req?.method;
  const bodyless = method === 'HEAD' || statusCode === 204 || statusCode === 304 || statusCode < 200;
  if (statusCode === 204 || statusCode === 304 || statusCode < 200) delete headers['content-length'];
  else headers['content-length'] = count;
  if (bodyless || count === 0) {
    res.writeHead(statusCode, headers);
    await ended(res);
    return { bytes: 0, zeroCopy: false };
  }

  if (!directBody(res)) return writeBody(res, input.fd, offset, count, statusCode, headers, signal);

  const socket = await socketOf(res, signal);
  if (res.headersSent) throw headersSent();
  if (signal?.aborted) throw abortError(signal, 0); // nothing written yet: the response is the caller's
  // The body bypasses res.write(): Node's own length check would see 0 bytes.
  if (res.strictContentLength) res.strictContentLength = false;
  const before = socket.bytesWritten;
  res.writeHead(statusCode, headers);
  res.flushHeaders(); // the status line and headers are now queued on the socket, before the body
  if (!headersQueued(socket, before)) return writeBody(res, input.fd, offset, count, statusCode, headers, signal);
  let result: SendFileResult;
  // From here to sendOwnedFile's first check of the signal all is synchronous:
  // an abort is either seen above or delivered to the send.
  const link = linkedSignal(signal);
  try {
    result = await sendOwnedFile(socket, input.fd, offset, count, link.signal, meter);
  } catch (err) {
    if (!socket.destroyed) socket.destroy(); // headers went out, the body cannot be completed
    throw err;
  } finally {
    link.done();
  }
  if (result.bytes < count) {
    socket.destroy();
    throw coded(
      'ERR_HTTP_CONTENT_LENGTH_MISMATCH',
      `Response body's content-length of ${result.bytes} byte(s) does not match the content-length of ${count} byte(s) set in header`,
      { bytesSent: result.bytes },
    );
  }
  await ended(res);
  return result;
}

/** `options.headers`, validated, as a new object with lowercase names (undefined values left out). */
function toHeaders(value: unknown): http.OutgoingHttpHeaders {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object') throw invalidArgType('options.headers', 'of type object', value);
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, v] of Object.entries(value as http.OutgoingHttpHeaders)) {
    if (v !== undefined) out[name.toLowerCase()] = v;
  }
  return out;
}

/** Whether `headers` (lowercase names) has a value for `name`. */
function hasHeader(headers: http.OutgoingHttpHeaders, name: string): boolean {
  return headers[name] !== undefined;
}

/** An Error with `code`, and `extra`'s properties. */
function coded(code: string, message: string, extra?: object): CodedError {
  const err = new Error(message) as CodedError;
  err.code = code;
  return Object.assign(err, extra);
}

/**
 * The response's socket, once it has one (a pipelined response waits for
 * the one before it). An abort while waiting rejects (nothing written).
 */
function socketOf(res: http.ServerResponse, signal: AbortSignal | undefined): Promise<net.Socket> {
  if (res.socket) return Promise.resolve(res.socket as net.Socket);
  return new Promise((resolve, reject) => {
    const settle = (): void => {
      res.removeListener('socket', onSocket);
      res.removeListener('close', onClose);
      offAbort?.();
    };
    const onSocket = (socket: net.Socket): void => {
      settle();
      // Resolving defers to a microtask: assignSocket() has flushed by then.
      resolve(socket);
    };
    const onClose = (): void => {
      settle();
      reject(coded('ERR_STREAM_DESTROYED', 'The response was closed before it got its connection', { bytesSent: 0 }));
    };
    res.once('socket', onSocket);
    res.once('close', onClose);
    const offAbort = signal && whenAborted(signal, () => {
      settle();
      reject(abortError(signal, 0));
    });
  });
}

/**
 * The copying path: the body through res.write(), honouring backpressure.
 * Pieces come from the pool in core/piece-pool.ts, given back from res.write()'s
 * callback where {@link unwrapped} says that callback can be trusted; else
 * each piece is a fresh buffer, left to its new owner.
 */
async function writeBody(
  res: http.ServerResponse,
  fd: number,
  offset: number,
  count: number,
  statusCode: number,
  headers: http.OutgoingHttpHeaders,
  signal: AbortSignal | undefined,
): Promise<SendFileResult> {
  if (signal?.aborted && !res.headersSent) throw abortError(signal, 0); // nothing written yet: the response is the caller's
  if (!res.headersSent) res.writeHead(statusCode, headers);
  const piece = PIECE_BYTES;
  const pooled = unwrapped(res);
  let sent = 0;
  const fail = (err: unknown): never => {
    res.destroy();
    throw Object.assign(err instanceof Error ? err : new Error(String(err)), { bytesSent: sent });
  };
  while (sent < count) {
    if (signal?.aborted) fail(abortError(signal, sent));
    if (res.destroyed) fail(coded('ERR_STREAM_DESTROYED', 'The response was destroyed during the body'));
    const size = Math.min(piece, count - sent);
    const buf = pooled ? takePiece(size) : Buffer.allocUnsafe(size);
    let got: number;
    try {
      got = await new Promise<number>((resolve, reject) =>
        fs.read(fd, buf, 0, buf.length, offset + sent, (err, n) => (err ? reject(err) : resolve(n))));
    } catch (err) {
      if (pooled) givePiece(buf);
      return fail(err);
    }
    if (signal?.aborted) fail(abortError(signal, sent)); // aborted during the read
    if (got === 0) {
      fail(coded('ERR_HTTP_CONTENT_LENGTH_MISMATCH',
        `Response body's content-length of ${sent} byte(s) does not match the content-length of ${count} byte(s) set in header`));
    }
    // The callback runs once the piece is written, or dropped with the connection.
    const more = pooled ? res.write(buf.subarray(0, got), () => givePiece(buf)) : res.write(buf.subarray(0, got));
    sent += got;
    if (!more && sent < count) {
      // Wait for 'drain', the response closing, or an abort (a client that
      // stopped reading must not hold an aborted response): the loop's
      // checks then say which.
      await new Promise<void>((resolve) => {
        const go = (): void => {
          res.removeListener('drain', go);
          res.removeListener('close', go);
          offAbort?.();
          resolve();
        };
        res.once('drain', go);
        res.once('close', go);
        const offAbort = signal && whenAborted(signal, go);
      });
    }
  }
  await ended(res);
  return { bytes: sent, zeroCopy: false };
}
