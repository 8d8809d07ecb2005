/**
 * A client for the broker: produce records, fetch segment bytes, list
 * segments and replay the whole log record by record.
 *
 *   const c = await BrokerClient.connect(port);
 *   const { segment, offset } = await c.produce('hello');
 *   for await (const r of c.records()) console.log(r.segment, r.offset, r.value);
 *   c.close();
 *
 * Requests may be pipelined: each call sends at once and resolves when its
 * response arrives (the broker answers a connection's requests in order).
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  ERROR, FETCH, FrameReader, LIST, MAX_FRAME, PRODUCE, RECORD_HEADER, encodeFetch, encodeRequest,
} from './protocol';

interface Pending {
  type: number;
  resolve: (frame: Buffer, length: number) => void;
  reject: (err: Error) => void;
}

export interface ClientOptions {
  /**
   * Discard fetched bytes instead of collecting them (for load generators):
   * `fetch` then resolves with an empty Buffer and `fetchCount` is the way to
   * fetch. Default false.
   */
  discardFetched?: boolean;
}

export interface StoredRecord {
  segment: number;
  /** Where the record (its length prefix) starts in the segment. */
  offset: number;
  value: Buffer;
}

export class BrokerClient {
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closedError: Error | null = null;

  private constructor(readonly socket: Socket, options: ClientOptions) {
    socket.setNoDelay(true);
    // Response header: type u8, id u32, status u8, and for FETCH the count u32.
    const reader = new FrameReader((frame, length) => this.onFrame(frame, length), MAX_FRAME, options.discardFetched ? 10 : Infinity);
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        socket.destroy(err as Error);
      }
    });
    const fail = (err?: Error) => {
      this.closedError = err ?? new Error('connection closed');
      for (const p of this.pending.values()) p.reject(this.closedError);
      this.pending.clear();
    };
    socket.on('error', fail);
    socket.on('close', () => fail());
  }

  static async connect(port: number, host = '127.0.0.1', options: ClientOptions = {}): Promise<BrokerClient> {
    const socket = connect(port, host);
    await once(socket, 'connect');
    return new BrokerClient(socket, options);
  }

  private onFrame(frame: Buffer, length: number): void {
    const id = frame.readUInt32BE(1);
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (frame.readUInt8(5) === ERROR) p.reject(new Error(`broker: ${frame.subarray(6).toString()}`));
    else p.resolve(frame, length);
  }

  /** Sends the request `encode(id)` and resolves with its response frame. */
  private call(type: number, encode: (id: number) => Buffer): Promise<{ frame: Buffer; length: number }> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { type, resolve: (frame, length) => resolve({ frame, length }), reject });
      this.socket.write(encode(id));
    });
  }

  /** Appends a record; resolves with where it was stored. */
  async produce(record: Buffer | string): Promise<{ segment: number; offset: number }> {
    const { frame } = await this.call(PRODUCE, (id) => encodeRequest(PRODUCE, id, typeof record === 'string' ? Buffer.from(record) : record));
    return { segment: frame.readUInt32BE(6), offset: Number(frame.readBigUInt64BE(10)) };
  }

  /** Raw bytes of `segment` from `offset`: at most `maxBytes`, fewer at the segment's end. */
  async fetch(segment: number, offset: number, maxBytes: number): Promise<Buffer> {
    const { frame } = await this.fetchFrame(segment, offset, maxBytes);
    return frame.subarray(10);
  }

  /** Like fetch, but resolves with the byte count only (all a load generator needs). */
  async fetchCount(segment: number, offset: number, maxBytes: number): Promise<number> {
    const { frame } = await this.fetchFrame(segment, offset, maxBytes);
    return frame.readUInt32BE(6);
  }

  private fetchFrame(segment: number, offset: number, maxBytes: number): Promise<{ frame: Buffer; length: number }> {
    return this.call(FETCH, (id) => encodeFetch(id, segment, offset, maxBytes));
  }

  /** The segments, oldest first, with their current sizes. */
  async list(): Promise<{ id: number; size: number }[]> {
    const { frame } = await this.call(LIST, (id) => encodeRequest(LIST, id));
    const body = frame.subarray(6);
    const n = body.readUInt32BE(0);
    const out: { id: number; size: number }[] = [];
    for (let i = 0; i < n; i++) out.push({ id: body.readUInt32BE(4 + i * 12), size: Number(body.readBigUInt64BE(8 + i * 12)) });
    return out;
  }

  /**
   * Every record of the log, in order, fetched `maxBytes` at a time (a record
   * longer than that is fetched whole). Stops at the sizes LIST reported.
   */
  async *records(maxBytes = 1024 * 1024): AsyncGenerator<StoredRecord> {
    for (const seg of await this.list()) {
      let offset = 0;
      while (offset < seg.size) {
        const want = Math.min(seg.size - offset, maxBytes);
        let bytes = await this.fetch(seg.id, offset, want);
        if (bytes.length < RECORD_HEADER) throw new Error(`short fetch at ${seg.id}:${offset}`);
        const first = bytes.readUInt32BE(0);
        if (RECORD_HEADER + first > bytes.length) bytes = await this.fetch(seg.id, offset, RECORD_HEADER + first);
        let pos = 0;
        while (pos + RECORD_HEADER <= bytes.length) {
          const len = bytes.readUInt32BE(pos);
          if (pos + RECORD_HEADER + len > bytes.length) break;
          yield { segment: seg.id, offset: offset + pos, value: bytes.subarray(pos + RECORD_HEADER, pos + RECORD_HEADER + len) };
          pos += RECORD_HEADER + len;
        }
        if (pos === 0) throw new Error(`no complete record at ${seg.id}:${offset}`);
        offset += pos;
      }
    }
  }

  close(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}
