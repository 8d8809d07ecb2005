/**
 * A small log broker over TCP, in the spirit of Kafka: PRODUCE appends a
 * record to the active segment and acks with its position; FETCH(segment,
 * offset, maxBytes) returns raw bytes from any segment; LIST names the
 * segments and their sizes. The FETCH path is selectable (see strategies.ts).
 *
 * Requests on one connection are answered in order, one at a time; separate
 * connections (a producer, several consumers) are served concurrently by the
 * one event loop, which is what makes the FETCH strategy matter to producers.
 *
 * Run it:
 *   npm run example:broker -- --dir /tmp/log --strategy pagewarm [--port 9092] [--segment-bytes 67108864]
 */
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as pw from 'pagewarm';
import { Log } from './log';
import {
  ERROR, FETCH, FrameReader, LIST, OK, PRODUCE, encodeResponse, fetchResponseHeader,
} from './protocol';
import { fetchSender, PAGEWARM_PATHS, STRATEGIES, type FetchSender, type PagewarmPath, type Strategy, type StrategyOptions } from './strategies';

export interface BrokerOptions extends StrategyOptions {
  /** Directory of the segment files (created if missing). */
  dir: string;
  /** How FETCH sends bytes. */
  strategy: Strategy;
  /** Segment size at which the log rolls. Default 64 MiB. */
  segmentBytes?: number;
}

/** Counters, for benchmarks and tests. */
export interface BrokerStats {
  produced: number;
  fetches: number;
  fetchedBytes: number;
  connections: number;
}

export class Broker {
  readonly log: Log;
  readonly strategy: Strategy;
  readonly stats: BrokerStats = { produced: 0, fetches: 0, fetchedBytes: 0, connections: 0 };
  private readonly send: FetchSender;
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();

  constructor(options: BrokerOptions) {
    if (!STRATEGIES.includes(options.strategy)) throw new Error(`unknown strategy ${options.strategy}`);
    this.strategy = options.strategy;
    this.send = fetchSender(options.strategy, options);
    this.log = new Log(options.dir, { segmentBytes: options.segmentBytes });
    this.server = createServer((socket) => this.accept(socket));
  }

  /** Starts listening (port 0: any free port); resolves with the address. */
  async listen(port = 0, host = '127.0.0.1'): Promise<AddressInfo> {
    this.server.listen(port, host);
    await once(this.server, 'listening');
    return this.server.address() as AddressInfo;
  }

  /** Stops accepting, closes every connection and the log. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.log.close();
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    this.stats.connections++;
    socket.setNoDelay(true);
    const queue: Buffer[] = [];
    let busy = false;
    const drain = async () => {
      busy = true;
      try {
        while (queue.length > 0 && !socket.destroyed) {
          const pending = this.handle(socket, queue.shift()!);
          if (pending) await pending;
        }
      } catch (err) {
        socket.destroy(err as Error);
      }
      busy = false;
    };
    const reader = new FrameReader((frame) => {
      queue.push(frame);
      if (!busy) void drain();
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        socket.destroy(err as Error);
      }
    });
    socket.on('error', () => {}); // a consumer going away is not the broker's problem
    socket.on('close', () => this.sockets.delete(socket));
  }

  /** Answers one request; returns a promise only when the answer is asynchronous. */
  private handle(socket: Socket, frame: Buffer): Promise<void> | undefined {
    const type = frame.readUInt8(0);
    const id = frame.readUInt32BE(1);
    const body = frame.subarray(5);
    if (type === PRODUCE) {
      const { segment, offset } = this.log.append(body);
      const ack = Buffer.allocUnsafe(12);
      ack.writeUInt32BE(segment, 0);
      ack.writeBigUInt64BE(BigInt(offset), 4);
      this.stats.produced++;
      socket.write(encodeResponse(PRODUCE, id, OK, ack));
      return undefined;
    }
    if (type === FETCH) {
      if (body.length !== 16) return this.fail(socket, FETCH, id, 'malformed FETCH');
      const segId = body.readUInt32BE(0);
      const offset = Number(body.readBigUInt64BE(4));
      const maxBytes = body.readUInt32BE(12);
      const seg = this.log.segment(segId);
      if (!seg) return this.fail(socket, FETCH, id, `no segment ${segId}`);
      if (offset > seg.size) return this.fail(socket, FETCH, id, `offset ${offset} is past the end of segment ${segId} (${seg.size})`);
      const count = Math.min(maxBytes, seg.size - offset);
      this.stats.fetches++;
      this.stats.fetchedBytes += count;
      if (count === 0) {
        socket.write(fetchResponseHeader(id, 0));
        return undefined;
      }
      return this.send(socket, fetchResponseHeader(id, count), seg.fd, offset, count);
    }
    if (type === LIST) {
      const segs = this.log.list();
      const out = Buffer.allocUnsafe(4 + segs.length * 12);
      out.writeUInt32BE(segs.length, 0);
      segs.forEach((s, i) => {
        out.writeUInt32BE(s.id, 4 + i * 12);
        out.writeBigUInt64BE(BigInt(s.size), 8 + i * 12);
      });
      socket.write(encodeResponse(LIST, id, OK, out));
      return undefined;
    }
    return this.fail(socket, type, id, `unknown request type ${type}`);
  }

  private fail(socket: Socket, type: number, id: number, message: string): undefined {
    socket.write(encodeResponse(type, id, ERROR, Buffer.from(message)));
    return undefined;
  }
}

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq ? eq.slice(name.length + 3) : fallback;
}

/** Command line: see the top of this file. Forked with IPC, it also answers {type:'stats'} and {type:'close'}. */
export async function main(): Promise<void> {
  const dir = arg('dir');
  if (!dir) throw new Error('--dir is required');
  if (arg('pagewarm-path') && !PAGEWARM_PATHS.includes(arg('pagewarm-path') as PagewarmPath)) throw new Error(`--pagewarm-path must be one of ${PAGEWARM_PATHS.join(', ')}`);
  const strategy = (arg('strategy', 'pagewarm') as Strategy);
  const hwm = arg('stream-hwm');
  const pagewarmPath = arg('pagewarm-path');
  const segmentBytes = arg('segment-bytes');
  const broker = new Broker({
    dir, strategy,
    ...(segmentBytes ? { segmentBytes: Number(segmentBytes) } : {}),
    ...(hwm ? { streamHighWaterMark: Number(hwm) } : {}),
    ...(pagewarmPath ? { pagewarmPath: pagewarmPath as PagewarmPath } : {}),
  });
  const addr = await broker.listen(Number(arg('port', '0')), arg('host', '127.0.0.1'));
  if (process.send) {
    process.send({ type: 'listening', port: addr.port, pid: process.pid });
    // Event-loop delay since the last stats request: how long producers' acks
    // could have been held up by the loop itself.
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    process.on('message', (msg: { type: string }) => {
      if (msg.type === 'stats') {
        const cpu = process.cpuUsage();
        const loopDelay = { p50: loop.percentile(50) / 1e6, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 };
        loop.reset();
        process.send!({ type: 'stats', cpuSeconds: (cpu.user + cpu.system) / 1e6, loopDelayMs: loopDelay, ...broker.stats, pagewarm: pw.stats() });
      } else if (msg.type === 'close') {
        void broker.close().then(() => process.exit(0));
      }
    });
    process.on('disconnect', () => process.exit(0));
  } else {
    console.log(`broker (${strategy}) listening on ${addr.address}:${addr.port}, log in ${dir}`);
    const stop = () => void broker.close().then(() => process.exit(0));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
