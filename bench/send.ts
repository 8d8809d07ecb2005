/**
 * send: a hot 1 GiB file over TCP to a discarding receiver (bench/c/sink.c,
 * a separate process), on two networks:
 *
 *   loopback   the receiver on 127.0.0.1 (the setting): the kernel
 *              hands each segment to the receiver on the sender's CPU
 *   veth       the receiver in a network namespace of its own, behind a
 *              veth pair with a 1500-byte MTU (bench/lib/veth.ts; needs root
 *              and iproute2, skipped with the reason otherwise): segmented
 *              and reassembled as a NIC would, a closer stand-in for a
 *              file server's real sends
 *
 *   pagewarm sendFile          zero-copy sendfile(2) on pagewarm's threads
 *   pipeline, 1 MiB chunks     stream.pipeline(fs.createReadStream(f, { highWaterMark: 1 MiB }), socket)
 *   pipeline, defaults         stream.pipeline(fs.createReadStream(f), socket)  (64 KiB chunks)
 *   .pipe(), defaults          fs.createReadStream(f).pipe(socket)
 *   C sendfile ref             bench/c/send_ref.c: a blocking sendfile(2) loop, one thread
 *   C read+write ref           the same program with a 1 MiB read(2) + write(2) loop
 *
 * Throughput and sender CPU (user+sys of this process, all threads; the C
 * references report their own getrusage). Node methods run in this process,
 * rotated each repetition, with the file resident before each.
 *
 * Then the per-call cost of sending one small range (64 KiB, 1 MiB) of the hot
 * file on one connection, calls awaited one after another: sendFile(socket)
 * vs pagewarm's fd-level transferTo(socketFd) vs transferToSync vs a read stream
 * piped with end:false (what the broker's `stream` strategy does).
 *
 * The per-call table is measured on loopback only.
 *
 * usage: bench/send.ts [--smoke] [--reps=N] [--size=MiB] [--net=all|loopback|veth]
 *        (default all: loopback, then veth where it can be made)
 */
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import * as pw from '../lib/index';
import {
  compileC, cpuSeconds, gbps, makeFile, median, MiB, nowMs, pairedRatio, parseFlags, printTable, printTargets, removeFile,
  rotate, saveResults, target, TMP_DIR, type Flags, type Target,
} from './lib/common';
import { VethPair } from './lib/veth';

const sendFile = pw.capabilities().zeroCopySend ? pw.sendFile : undefined;

const ALL = ['pagewarm sendFile', 'pipeline, 1 MiB chunks', 'pipeline, defaults', '.pipe(), defaults', 'C sendfile ref', 'C read+write ref'] as const;
type Method = (typeof ALL)[number];

interface Sample {
  wall: number;
  cpu: number;
  bytes: number;
}

/** A network to send over: where the receiver listens, and how to start it there. */
interface Net {
  name: 'loopback' | 'veth';
  /** The receiver's address. */
  host: string;
  /** The sink's command line. */
  sink: [string, string[]];
  /** How the run is described in its table. */
  what: string;
}

/** The sink: a child process printing "port N", then "bytes N" per connection. */
async function startSink([bin, args]: [string, string[]]) {
  const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const queue: string[] = [];
  const waiters: ((l: string) => void)[] = [];
  lines.on('line', (l) => {
    const w = waiters.shift();
    if (w) w(l);
    else queue.push(l);
  });
  const next = () => new Promise<string>((resolve, reject) => {
    const l = queue.shift();
    if (l !== undefined) return resolve(l);
    const timer = setTimeout(() => reject(new Error('sink did not answer within 60 s')), 60_000);
    waiters.push((x) => {
      clearTimeout(timer);
      resolve(x);
    });
  });
  const port = Number((await next()).split(' ')[1]);
  return { port, next, stop: () => child.stdin!.end() };
}

function connected(port: number, host: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host, () => resolve(s));
    s.once('error', reject);
  });
}

function finished(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.end(() => resolve());
  });
}

async function runMethod(method: Method, path: string, size: number, port: number, host: string, cref: string | null): Promise<Sample | null> {
  if (method.startsWith('C ')) {
    if (!cref) return null;
    const r = spawnSync(cref, [String(port), path, method === 'C sendfile ref' ? 'sendfile' : 'rw', host], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`send_ref failed: ${r.stderr}`);
    const o = JSON.parse(r.stdout) as { bytes: number; wall: number; cpu: number };
    return { wall: o.wall, cpu: o.cpu, bytes: o.bytes };
  }
  if (method === 'pagewarm sendFile' && !sendFile) return null;
  const socket = await connected(port, host);
  const fh = await open(path, 'r');
  try {
    const c0 = cpuSeconds();
    const t0 = nowMs();
    let bytes = size;
    if (method === 'pagewarm sendFile') {
      const r = await sendFile!(socket, fh.fd);
      if (!r.zeroCopy) throw new Error('sendFile did not go zero-copy');
      bytes = r.bytes;
      await finished(socket);
    } else if (method === 'pipeline, 1 MiB chunks') {
      await pipeline(createReadStream(path, { highWaterMark: MiB }), socket);
    } else if (method === 'pipeline, defaults') {
      await pipeline(createReadStream(path), socket);
    } else {
      await new Promise<void>((resolve, reject) => {
        const src = createReadStream(path);
        src.once('error', reject);
        socket.once('error', reject);
        socket.once('finish', resolve);
        src.pipe(socket);
      });
    }
    return { wall: (nowMs() - t0) / 1000, cpu: cpuSeconds() - c0, bytes };
  } finally {
    socket.destroy();
    await fh.close();
  }
}

const PER_CALL = ['sendFile(socket)', 'sendFile(socket, warm: false)', 'transferTo(socketFd) async', 'transferToSync(socketFd)', 'createReadStream().pipe(end: false)'] as const;

interface PerCall { method: string; range: number; calls: number; wallUs: number; cpuUs: number }

/** Per-call cost of small sends on one connection, each method in turn, twice, in alternating order. */
async function perCall(path: string, size: number, port: number, next: () => Promise<string>, smoke: boolean): Promise<PerCall[]> {
  const out: PerCall[] = [];
  const fh = await open(path, 'r');
  try {
    await pw.prepareForRead(fh);
    for (const range of [64 * 1024, MiB]) {
      const calls = smoke ? 50 : Math.min(2000, Math.floor((256 * MiB) / range));
      const slots = Math.max(1, Math.floor(size / range));
      for (let round = 0; round < 2; round++) {
        for (const m of round ? [...PER_CALL].reverse() : PER_CALL) {
          if (m.startsWith('sendFile') && !sendFile) continue;
          const socket = await connected(port, '127.0.0.1');
          const sfd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
          const one = async (i: number) => {
            const off = (i % slots) * range;
            if (m === 'sendFile(socket)') await sendFile!(socket, fh.fd, { offset: off, length: range });
            else if (m === 'sendFile(socket, warm: false)') await sendFile!(socket, fh.fd, { offset: off, length: range, warm: false });
            else if (m === 'transferTo(socketFd) async') await pw.transferTo(sfd, fh.fd, off, range);
            else if (m === 'transferToSync(socketFd)') pw.transferToSync(sfd, fh.fd, off, range);
            else {
              await new Promise<void>((resolve, reject) => {
                const src = createReadStream('', { fd: fh.fd, start: off, end: off + range - 1, autoClose: false });
                src.once('end', resolve);
                src.once('error', reject);
                src.pipe(socket, { end: false });
              });
            }
          };
          for (let i = 0; i < 20; i++) await one(i); // warm-up
          const c0 = cpuSeconds();
          const t0 = nowMs();
          for (let i = 0; i < calls; i++) await one(i);
          const wallUs = ((nowMs() - t0) * 1000) / calls;
          const cpuUs = ((cpuSeconds() - c0) * 1e6) / calls;
          await finished(socket);
          await next();
          const prev = out.find((x) => x.method === m && x.range === range);
          if (prev) { // keep the mean of the two rounds
            prev.wallUs = (prev.wallUs + wallUs) / 2;
            prev.cpuUs = (prev.cpuUs + cpuUs) / 2;
            prev.calls += calls;
          } else {
            out.push({ method: m, range, calls, wallUs, cpuUs });
          }
        }
      }
    }
  } finally {
    await fh.close();
  }
  return out;
}

export async function main(flags: Flags = parseFlags()): Promise<void> {
  const smoke = flags.smoke;
  const size = Number(flags.raw.size ?? (smoke ? 16 : 1024)) * MiB;
  const reps = flags.reps ?? (smoke ? 1 : 5);
  const want = flags.raw.net ?? 'all';
  if (!['all', 'loopback', 'veth'].includes(want)) throw new Error(`--net must be all, loopback or veth, not ${want}`);
  const sinkBin = compileC('sink');
  const cref = compileC('send_ref');
  if (!sinkBin) throw new Error('cannot build bench/c/sink.c');
  const methods = ALL.filter((m) => (m === 'pagewarm sendFile' ? !!sendFile : m.startsWith('C ') ? !!cref : true));
  if (!sendFile) console.log(`pagewarm sendFile skipped: no zero-copy send here (${pw.capabilities().fallbackReason})`);

  const nets: Net[] = [];
  if (want !== 'veth') nets.push({ name: 'loopback', host: '127.0.0.1', sink: [sinkBin, ['3600', '127.0.0.1']], what: 'over 127.0.0.1' });
  let pair: VethPair | null = null;
  let vethSkipped: string | null = null;
  if (want !== 'loopback') {
    const p = VethPair.create();
    if (typeof p === 'string') {
      vethSkipped = p;
      console.log(`\nsend over veth skipped: ${p}`);
      if (want === 'veth') throw new Error(`--net=veth: ${p}`);
    } else {
      pair = p;
      nets.push({
        name: 'veth', host: p.peerAddress, sink: p.inside(sinkBin, ['3600', p.peerAddress]),
        what: `over a veth pair to another network namespace (${p.hostAddress} -> ${p.peerAddress}, MTU 1500)`,
      });
    }
  }

  const path = makeFile(join(TMP_DIR, `pagewarm-bench-send-${process.pid}`), size);
  const results: Partial<Record<Net['name'], Record<string, Sample[]>>> = {};
  const targets: Target[] = [];
  let calls: PerCall[] = [];
  try {
    for (const net of nets) {
      results[net.name] = await sendOver(net, methods, path, size, reps, cref);
      if (net.name === 'loopback') {
        const sink = await startSink(net.sink);
        try {
          calls = await perCall(path, size, sink.port, sink.next, smoke);
        } finally {
          sink.stop();
        }
      }
    }
  } finally {
    removeFile(path);
    pair?.destroy();
  }
  for (const net of nets) {
    const samples = results[net.name]!;
    const best = samples['pipeline, 1 MiB chunks'];
    const ref = samples['C sendfile ref'] ?? [];
    const tput = (s: Sample[]) => s.map((x) => x.bytes / x.wall);
    printTable(`send ${size / MiB} MiB ${net.what} (medians of ${reps})`,
      ['method', 'GB/s', 'wall ms', 'sender CPU ms', 'CPU s/GiB', 'GB/s vs pipeline 1 MiB', 'CPU vs pipeline 1 MiB', 'GB/s vs C sendfile'],
      methods.map((m) => {
        const s = samples[m];
        return [m, gbps(size, median(s.map((x) => x.wall))), median(s.map((x) => x.wall)) * 1000, median(s.map((x) => x.cpu)) * 1000,
          median(s.map((x) => x.cpu)) / (size / 2 ** 30),
          pairedRatio(tput(s), tput(best)), pairedRatio(s.map((x) => x.cpu), best.map((x) => x.cpu)),
          ref.length ? pairedRatio(tput(s), tput(ref)) : NaN];
      }));
    const pwS = samples['pagewarm sendFile'];
    if (pwS?.length) {
      const t = pairedRatio(tput(pwS), tput(best));
      targets.push(target('send throughput: sendFile / pipeline 1 MiB', '>= 1.5', t, t >= 1.5, net.name));
      const c = pairedRatio(pwS.map((x) => x.cpu), best.map((x) => x.cpu));
      targets.push(target('send CPU: sendFile / pipeline 1 MiB', '<= 0.6', c, c <= 0.6, net.name));
      if (ref.length) {
        const r = pairedRatio(tput(ref), tput(pwS));
        targets.push(target('send throughput: C sendfile / sendFile', '<= 1.25', r, r <= 1.25, net.name));
      }
    }
  }
  if (calls.length) {
    printTable('one range per call on one connection over 127.0.0.1, calls awaited in turn (hot file; mean of two rounds)',
      ['method', 'range', 'us per call', 'CPU us per call', 'MB/s'],
      calls.map((c) => [c.method, c.range >= MiB ? `${c.range / MiB} MiB` : `${c.range / 1024} KiB`, c.wallUs, c.cpuUs, c.range / c.wallUs]));
  }
  printTargets(targets);
  const file = saveResults('send', smoke, {
    sizeBytes: size, reps, nets: nets.map((n) => ({ name: n.name, what: n.what })), vethSkipped,
    samples: results.loopback ?? {}, vethSamples: results.veth ?? null, perCall: calls, targets, sendFileAvailable: !!sendFile,
  });
  console.log(`\nresults: ${file}`);
}

/** The whole-file sends over one network: an untimed pass, then `reps` rotated repetitions. */
async function sendOver(net: Net, methods: Method[], path: string, size: number, reps: number, cref: string | null): Promise<Record<string, Sample[]>> {
  const samples: Record<string, Sample[]> = {};
  for (const m of methods) samples[m] = [];
  const sink = await startSink(net.sink);
  try {
    console.log(`\nsend: hot ${size / MiB} MiB file ${net.what} to a discarding C receiver, ${reps} rotated repetitions`);
    const warm = async () => {
      const fh = await open(path, 'r');
      await pw.prepareForRead(fh);
      await fh.close();
    };
    for (const m of methods) { // untimed pass: JIT, connection paths
      await warm();
      await runMethod(m, path, size, sink.port, net.host, cref);
      await sink.next();
    }
    for (let rep = 0; rep < reps; rep++) {
      for (const m of rotate(methods, rep)) {
        await warm();
        const s = await runMethod(m, path, size, sink.port, net.host, cref);
        const got = Number((await sink.next()).split(' ')[1]);
        if (got !== size) throw new Error(`${m} ${net.what}: the receiver got ${got} bytes, not ${size}`);
        if (s) samples[m].push(s);
      }
    }
  } finally {
    sink.stop();
  }
  return samples;
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
