/**
 * Helpers for the send, socket and HTTP tests: scratch files with known
 * content, receivers that hash what arrives, descriptor counts.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export const KiB = 1 << 10;
export const MiB = 1 << 20;
export const GiB = 1 << 30;

/** A fresh scratch directory, removed when the process exits. */
export function scratch(prefix = 'pagewarm-send-'): string {
  const dir = fs.mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `size` random bytes to `path` (fsynced, so eviction works) and returns the path. */
export function randomFile(path: string, size: number): string {
  const fd = fs.openSync(path, 'w');
  const piece = randomBytes(Math.min(Math.max(size, 1), 4 * MiB));
  for (let done = 0; done < size; ) {
    done += fs.writeSync(fd, piece, 0, Math.min(piece.length, size - done), done);
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  return path;
}

/** sha256 (hex) of `[offset, offset + length)` of a file, read with plain reads; short at end of file. */
export function sha256OfRange(path: string, offset: number, length: number): { hex: string; bytes: number } {
  const fd = fs.openSync(path, 'r');
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(4 * MiB);
  let done = 0;
  try {
    while (done < length) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, length - done), offset + done);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { hex: hash.digest('hex'), bytes: done };
}

/**
 * sha256 of `prefix + file range + suffix`, computed by another process
 * (python3), so that this one can receive at the same time.
 */
export function sha256Elsewhere(
  path: string,
  offset: number,
  length: number,
  prefix = '',
  suffix = '',
): Promise<{ hex: string; bytes: number }> {
  const code = `
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY); off = int(sys.argv[2]); left = int(sys.argv[3])
h = hashlib.sha256(sys.argv[4].encode()); n = 0
while left > 0:
    b = os.pread(fd, min(left, 8 << 20), off + n)
    if not b: break
    h.update(b); n += len(b); left -= len(b)
h.update(sys.argv[5].encode())
print(n, h.hexdigest())`;
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', code, path, String(offset), String(length), prefix, suffix], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (status) => {
      const [bytes, hex] = out.trim().split(' ');
      if (status === 0 && hex) resolve({ hex, bytes: Number(bytes) });
      else reject(new Error(`python3 exited ${status}`));
    });
  });
}

/**
 * A receiver in another process (python3) that hashes one connection, over
 * TCP or a Unix socket: large transfers are then hashed on the other core
 * instead of this process's event loop.
 */
export async function hashingPeer(
  kind: 'tcp' | 'unix',
  dir: string,
): Promise<{ connect(): Promise<net.Socket>; result: Promise<{ bytes: number; hex: string }> }> {
  const path = join(dir, `p${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
  const code = `
import hashlib, socket, sys
if sys.argv[1] == 'tcp':
    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); print(s.getsockname()[1], flush=True)
else:
    s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[2]); s.listen(1); print(sys.argv[2], flush=True)
c, _ = s.accept(); h = hashlib.sha256(); n = 0; buf = bytearray(4 << 20); view = memoryview(buf)
while True:
    k = c.recv_into(buf)
    if not k: break
    h.update(view[:k]); n += k
print(n, h.hexdigest(), flush=True)`;
  const child = spawn('python3', ['-c', code, kind, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  child.stdout.on('data', (d) => {
    out += d;
    let i: number;
    while ((i = out.indexOf('\n')) >= 0) {
      lines.push(out.slice(0, i));
      out = out.slice(i + 1);
      waiters.shift()?.();
    }
  });
  const line = async (): Promise<string> => {
    while (lines.length === 0) await new Promise<void>((r) => waiters.push(r));
    return lines.shift()!;
  };
  const address = await line();
  return {
    connect: () =>
      new Promise((resolve, reject) => {
        const c = kind === 'tcp' ? net.connect(Number(address), '127.0.0.1') : net.connect(address);
        c.once('connect', () => resolve(c));
        c.once('error', reject);
      }),
    result: line().then((l) => {
      const [bytes, hex] = l.split(' ');
      return { bytes: Number(bytes), hex };
    }),
  };
}

export function sha256(...parts: Buffer[]): string {
  const hash = createHash('sha256');
  for (const p of parts) hash.update(p);
  return hash.digest('hex');
}

/** Open descriptors of this process. */
export function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** What a receiving connection saw. */
export interface Received {
  bytes: number;
  sha256: string;
  /** The first bytes, for ordering checks. */
  head: Buffer;
  /** The last bytes, for ordering checks. */
  tail: Buffer;
  /** How the connection ended: 'end' (FIN) or an error code. */
  how: string;
}

/** A listening server (TCP on 127.0.0.1 or a Unix socket) that hashes every connection's bytes. */
export interface HashServer {
  kind: 'tcp' | 'unix';
  server: net.Server;
  /** Connects a client socket to it. */
  connect(): Promise<net.Socket>;
  /** The next connection's result, in accept order. */
  next(): Promise<Received>;
  /** Server-side sockets, in accept order. */
  accepted: net.Socket[];
  close(): Promise<void>;
}

export async function hashServer(kind: 'tcp' | 'unix', dir: string, onSocket?: (s: net.Socket) => void): Promise<HashServer> {
  const results: Array<Promise<Received>> = [];
  const accepted: net.Socket[] = [];
  let taken = 0;
  const server = net.createServer((s) => {
    accepted.push(s);
    results.push(
      new Promise<Received>((resolve) => {
        const hash = createHash('sha256');
        let bytes = 0;
        let head = Buffer.alloc(0);
        let tail = Buffer.alloc(0);
        s.on('data', (d: Buffer) => {
          hash.update(d);
          bytes += d.length;
          if (head.length < 64) head = Buffer.concat([head, d.subarray(0, 64 - head.length)]);
          tail = d.length >= 64 ? Buffer.from(d.subarray(-64)) : Buffer.concat([tail, d]).subarray(-64);
        });
        let settled = false;
        const done = (how: string): void => {
          if (settled) return;
          settled = true;
          resolve({ bytes, sha256: hash.digest('hex'), head, tail, how });
        };
        s.on('end', () => {
          done('end');
          s.end();
        });
        s.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? 'error'));
        s.on('close', () => done('close'));
      }),
    );
    onSocket?.(s);
  });
  const path = join(dir, `s${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
  await new Promise<void>((resolve) => (kind === 'tcp' ? server.listen(0, '127.0.0.1', resolve) : server.listen(path, resolve)));
  return {
    kind,
    server,
    accepted,
    connect: () =>
      new Promise<net.Socket>((resolve, reject) => {
        const c = kind === 'tcp' ? net.connect((server.address() as net.AddressInfo).port, '127.0.0.1') : net.connect(path);
        c.once('connect', () => resolve(c));
        c.once('error', reject);
      }),
    next: async () => {
      while (results.length <= taken) await new Promise((r) => setTimeout(r, 5));
      return results[taken++];
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * The close-and-reuse race: starts `send` from a fresh descriptor of `file`
 * to a Unix socket, closes that descriptor at once and opens `other`, which
 * takes the number. Resolves with what the call reported and what arrived.
 */
export async function sendWhileNumberReused(
  dir: string,
  file: string,
  other: string,
  send: (socket: net.Socket, fd: number) => Promise<number>,
): Promise<{ sent: number; got: Received; reused: boolean }> {
  const server = await hashServer('unix', dir);
  try {
    const c = await server.connect();
    const fd = fs.openSync(file, 'r');
    const p = send(c, fd);
    fs.closeSync(fd);
    const reusedFd = fs.openSync(other, 'r');
    const sent = await p.finally(() => fs.closeSync(reusedFd));
    c.end();
    return { sent, got: await server.next(), reused: reusedFd === fd };
  } finally {
    await server.close();
  }
}

/** Resolves when the socket emits 'close'. */
export function closed(s: net.Socket): Promise<void> {
  return new Promise((resolve) => (s.destroyed && s.closed ? resolve() : s.once('close', () => resolve())));
}

/** A deterministic pseudo-random generator (xorshift32), so failures can be replayed from the seed. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let compiled: string | undefined;

/**
 * lib/ transpiled to CommonJS JavaScript (once per process) in a scratch
 * package that links this package's build/ and node_modules/: for worker
 * threads and child processes, which then load in milliseconds instead of
 * compiling the TypeScript again through ts-node. Returns lib/index.js.
 */
export function compiledLib(): string {
  if (compiled) return compiled;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const ts = require('typescript') as typeof import('typescript');
  const root = join(__dirname, '..');
  const out = scratch('pagewarm-lib-');
  fs.writeFileSync(join(out, 'package.json'), JSON.stringify({ name: 'pagewarm', private: true }));
  fs.symlinkSync(join(root, 'build'), join(out, 'build'));
  fs.symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'));
  const files = (fs.readdirSync(join(root, 'lib'), { recursive: true }) as string[]).map((name) => join('lib', name));
  for (const rel of files) {
    if (!rel.endsWith('.ts') || rel.endsWith('.d.ts')) continue;
    const source = fs.readFileSync(join(root, rel), 'utf8');
    const js = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: rel,
    }).outputText;
    fs.mkdirSync(dirname(join(out, rel)), { recursive: true });
    fs.writeFileSync(join(out, rel.replace(/\.ts$/, '.js')), js);
  }
  compiled = join(out, 'lib', 'index.js');
  return compiled;
}
