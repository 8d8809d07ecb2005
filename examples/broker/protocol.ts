/**
 * The broker's wire protocol: length-prefixed frames over TCP.
 *
 * Every frame starts with a u32 (big-endian) length of the bytes that follow.
 *
 * Request:  length u32 | type u8 | correlationId u32 | body
 *   PRODUCE  body = the record's bytes
 *   FETCH    body = segment u32 | offset u64 | maxBytes u32
 *   LIST     body = (empty)
 *
 * Response: length u32 | type u8 | correlationId u32 | status u8 | body
 *   PRODUCE  body = segment u32 | offset u64 (where the record starts)
 *   FETCH    body = count u32 | `count` raw bytes of the segment file
 *   LIST     body = n u32 | n x (segment u32 | size u64)
 *   status != OK: body = a UTF-8 error message
 *
 * Records are stored in a segment as: length u32 | bytes. A FETCH returns
 * raw segment bytes, so it may end in the middle of a record: the client
 * keeps the incomplete tail and fetches again from where it starts.
 */

export const PRODUCE = 1;
export const FETCH = 2;
export const LIST = 3;

export const OK = 0;
export const ERROR = 1;

/** Bytes before the body of a request: length, type, correlation id. */
export const REQUEST_HEADER = 4 + 1 + 4;
/** Bytes before the body of a response: length, type, correlation id, status. */
export const RESPONSE_HEADER = 4 + 1 + 4 + 1;
/** Bytes of a stored record's length prefix. */
export const RECORD_HEADER = 4;
/** Largest frame either side accepts (a record, or a fetch response). */
export const MAX_FRAME = 256 * 1024 * 1024;

export function encodeRequest(type: number, correlationId: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.allocUnsafe(REQUEST_HEADER);
  head.writeUInt32BE(1 + 4 + body.length, 0);
  head.writeUInt8(type, 4);
  head.writeUInt32BE(correlationId, 5);
  return body.length === 0 ? head : Buffer.concat([head, body]);
}

export function encodeFetch(correlationId: number, segment: number, offset: number, maxBytes: number): Buffer {
  const body = Buffer.allocUnsafe(4 + 8 + 4);
  body.writeUInt32BE(segment, 0);
  body.writeBigUInt64BE(BigInt(offset), 4);
  body.writeUInt32BE(maxBytes, 12);
  return encodeRequest(FETCH, correlationId, body);
}

/** The header of a response whose body is `bodyLength` bytes (the body follows separately). */
export function responseHeader(type: number, correlationId: number, status: number, bodyLength: number, extra = 0): Buffer {
  const head = Buffer.allocUnsafe(RESPONSE_HEADER + extra);
  head.writeUInt32BE(1 + 4 + 1 + bodyLength, 0);
  head.writeUInt8(type, 4);
  head.writeUInt32BE(correlationId, 5);
  head.writeUInt8(status, 9);
  return head;
}

export function encodeResponse(type: number, correlationId: number, status: number, body: Buffer): Buffer {
  return Buffer.concat([responseHeader(type, correlationId, status, body.length), body]);
}

/** The header of a FETCH response carrying `count` bytes, including the count itself. */
export function fetchResponseHeader(correlationId: number, count: number): Buffer {
  const head = responseHeader(FETCH, correlationId, OK, 4 + count, 4);
  head.writeUInt32BE(count, RESPONSE_HEADER);
  return head;
}

/** A stored record: length prefix and bytes. */
export function encodeRecord(record: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER + record.length);
  out.writeUInt32BE(record.length, 0);
  record.copy(out, RECORD_HEADER);
  return out;
}

/**
 * Splits a byte stream into frames. `push` takes chunks as they arrive and
 * calls `onFrame(frame, length)` with each complete frame, without its length
 * prefix. Chunks are concatenated once per frame, not once per chunk.
 *
 * With `keepBytes` set, frames longer than that are delivered with only their
 * first `keepBytes` bytes (the rest is skipped without copying); `length` is
 * always the full frame length. Benchmark consumers use this to discard
 * fetched data cheaply.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1; // length of the frame being collected, -1 while reading the prefix
  private skip = 0; // bytes of the current frame still to be skipped
  private head: Buffer | null = null;
  private headLength = 0;

  constructor(
    private readonly onFrame: (frame: Buffer, length: number) => void,
    private readonly maxFrame = MAX_FRAME,
    private readonly keepBytes = Infinity,
  ) {}

  push(chunk: Buffer): void {
    if (this.skip > 0) {
      const k = Math.min(this.skip, chunk.length);
      this.skip -= k;
      chunk = chunk.subarray(k);
      if (this.skip === 0) this.deliverHead();
      if (chunk.length === 0) return;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 4) return;
        const prefix = this.take(4);
        this.need = prefix.readUInt32BE(0);
        if (this.need > this.maxFrame) throw new Error(`frame of ${this.need} bytes exceeds the limit of ${this.maxFrame}`);
      }
      if (this.need > this.keepBytes) {
        if (this.buffered < this.keepBytes) return;
        this.head = this.take(this.keepBytes);
        this.headLength = this.need;
        let rest = this.need - this.keepBytes;
        this.need = -1;
        const k = Math.min(rest, this.buffered);
        this.drop(k);
        rest -= k;
        if (rest > 0) {
          this.skip = rest;
          return;
        }
        this.deliverHead();
        continue;
      }
      if (this.buffered < this.need) return;
      const length = this.need;
      const frame = this.take(length);
      this.need = -1;
      this.onFrame(frame, length);
    }
  }

  private deliverHead(): void {
    const head = this.head!;
    this.head = null;
    this.onFrame(head, this.headLength);
  }

  private drop(n: number): void {
    while (n > 0) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n);
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
      n -= k;
      this.buffered -= k;
    }
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    let out: Buffer;
    const first = this.chunks[0];
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let copied = 0;
      while (copied < n) {
        const c = this.chunks[0];
        const k = Math.min(c.length, n - copied);
        c.copy(out, copied, 0, k);
        copied += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }
}
