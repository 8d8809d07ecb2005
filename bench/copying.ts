/**
 * copying: the garbage collections of pagewarm's copying paths, beside
 * Node's own copy (`createReadStream().pipe(res)`), per GiB served.
 *
 * Where a body cannot go zero-copy (TLS, the portable fallback, a response
 * whose write() middleware replaced) pagewarm copies it through JavaScript
 * in 256 KiB pieces. A fresh Buffer per piece is memory outside V8's heap,
 * and V8 answers a gigabyte a second of it with an "external memory
 * pressure" scavenge every few ms on the event loop; pagewarm reuses its
 * pieces (lib/core/piece-pool.ts) where the write's callback says when they are
 * free. The wrapped row keeps fresh pieces (middleware may hold a chunk
 * after calling back), so it shows the cost avoided.
 *
 * Each server is its own process, observed by perf_hooks 'gc' entries; a
 * Node client in this process downloads a 64 MiB hot file over 4
 * keep-alive connections, 2 s untimed and then 6 s timed; 3 rotated
 * repetitions.
 * usage: bench/copying.ts [--smoke] [--reps=N] [--seconds=N]
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { once } from 'node:events';
import { join } from 'node:path';
import { fmt, GiB, LAUNCH, makeFile, median, MiB, nowMs, pairedRatio, parseFlags, printTable, printTargets, procCpuSeconds, ROOT, rotate, saveResults, target, TMP_DIR } from './lib/common';
import type { Kind } from './copying/server';

const flags = parseFlags();
const smoke = flags.smoke;
const REPS = Number(flags.raw.reps ?? (smoke ? 1 : 3));
const SECONDS = Number(flags.raw.seconds ?? (smoke ? 1 : 6));
const CONNECTIONS = 4;
const WARM_UP_MS = smoke ? 200 : 2000;
const FILE_SIZE = (smoke ? 8 : 64) * MiB;
const SERVERS: Array<{ name: string; kind: Kind }> = [
  { name: 'pagewarm serveFile, HTTPS', kind: 'pagewarm-https' },
  { name: 'createReadStream, HTTPS', kind: 'stream-https' },
  { name: 'pagewarm serveFile, HTTP, portable fallback', kind: 'pagewarm-fallback' },
  { name: 'pagewarm serveFile, HTTP, wrapped res.write', kind: 'pagewarm-wrapped' },
  { name: 'createReadStream, HTTP', kind: 'stream-http' },
];

interface Run { gib: number; gcs: number; gcMs: number; maxMs: number; cpuS: number; seconds: number; zeroCopy: boolean }

/** Starts one server, loads it for SECONDS, and returns what it reports. */
async function measure(kind: Kind, file: string, key: string, cert: string): Promise<Run> {
  const env = { ...process.env };
  if (kind === 'pagewarm-fallback') env.PAGEWARM_FORCE_FALLBACK = '1';
  else delete env.PAGEWARM_FORCE_FALLBACK;
  const child: ChildProcess = fork(LAUNCH, [join(__dirname, 'copying', 'server.ts'), kind, file, key, cert], { env, execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
  try {
    const [hello] = (await once(child, 'message')) as [{ port: number }];
    const tls = kind.endsWith('https');
    const agentOptions = { keepAlive: true, maxSockets: CONNECTIONS, rejectUnauthorized: false };
    const agent = tls ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    const get = tls ? https.get : http.get;
    const url = `${tls ? 'https' : 'http'}://127.0.0.1:${hello.port}/`;
    const download = (): Promise<number> => new Promise((resolve, reject) => {
      get(url, { agent }, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => { n += c.length; });
        res.on('end', () => (n === FILE_SIZE ? resolve(n) : reject(new Error(`${kind}: ${n} of ${FILE_SIZE} bytes`))));
        res.on('error', reject);
      }).on('error', reject);
    });
    const load = async (ms: number): Promise<void> => {
      const until = nowMs() + ms;
      await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
        while (nowMs() < until) await download();
      }));
    };
    // Untimed: connections set up, the file hot, the code compiled, and the
    // heap past the start's garbage (loading TypeScript), so what is
    // measured is the steady state.
    await load(WARM_UP_MS);
    const cpu0 = procCpuSeconds(child.pid!);
    const t0 = nowMs();
    const before = await report(child);
    await load(SECONDS * 1000);
    const after = await report(child);
    const seconds = (nowMs() - t0) / 1000;
    const cpuS = procCpuSeconds(child.pid!) - cpu0;
    agent.destroy();
    const pauses = after.pauses.slice(before.pauses.length);
    return {
      gib: (after.bytes - before.bytes) / GiB,
      gcs: pauses.length,
      gcMs: pauses.reduce((a, b) => a + b, 0),
      maxMs: Math.max(0, ...pauses),
      cpuS, seconds, zeroCopy: after.zeroCopy,
    };
  } finally {
    child.disconnect();
    await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 5000))]);
  }
}

function report(child: ChildProcess): Promise<{ bytes: number; pauses: number[]; zeroCopy: boolean }> {
  const reply = once(child, 'message') as Promise<[{ bytes: number; pauses: number[]; zeroCopy: boolean }]>;
  child.send({ type: 'report' });
  return reply.then(([m]) => m);
}

export async function main(): Promise<void> {
  const dir = join(TMP_DIR, `pagewarm-bench-copying${smoke ? '-smoke' : ''}`);
  mkdirSync(dir, { recursive: true });
  const file = makeFile(join(dir, 'body.bin'), FILE_SIZE);
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  if (!existsSync(cert)) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=localhost'], { stdio: 'ignore' });
  }
  const runs = new Map<Kind, Run[]>(SERVERS.map((s) => [s.kind, []]));
  for (let rep = 0; rep < REPS; rep++) {
    for (const s of rotate(SERVERS, rep)) {
      const r = await measure(s.kind, file, key, cert);
      runs.get(s.kind)!.push(r);
      console.log(`copying: rep ${rep + 1} ${s.name}: ${fmt(r.gib)} GiB in ${fmt(r.seconds)} s, ${r.gcs} GCs, ${fmt(r.gcMs)} ms of GC, longest ${fmt(r.maxMs)} ms`);
    }
  }
  const per = (k: Kind, f: (r: Run) => number): number[] => runs.get(k)!.map(f);
  const gcsPerGiB = (k: Kind): number[] => per(k, (r) => r.gcs / r.gib);
  const gcMsPerGiB = (k: Kind): number[] => per(k, (r) => r.gcMs / r.gib);
  printTable(`Garbage collection per GiB served (64 MiB file, ${CONNECTIONS} connections, ${SECONDS} s, ${REPS} reps, medians)`,
    ['server', 'GB/s', 'GCs per GiB', 'GC ms per GiB', 'longest GC ms', 'CPU s per GiB'],
    SERVERS.map((s) => [s.name, median(per(s.kind, (r) => (r.gib * GiB) / r.seconds / 1e9)), median(gcsPerGiB(s.kind)),
      median(gcMsPerGiB(s.kind)), median(per(s.kind, (r) => r.maxMs)), median(per(s.kind, (r) => r.cpuS / r.gib))]));
  const ratio = (a: Kind, b: Kind): number => pairedRatio(gcMsPerGiB(a), gcMsPerGiB(b));
  const targets = [
    target('GC ms per GiB: serveFile over HTTPS / createReadStream over HTTPS', '<= 0.2', ratio('pagewarm-https', 'stream-https'), ratio('pagewarm-https', 'stream-https') <= 0.2),
    target('GC ms per GiB: serveFile on the fallback / createReadStream over HTTP', '<= 0.2', ratio('pagewarm-fallback', 'stream-http'), ratio('pagewarm-fallback', 'stream-http') <= 0.2),
  ];
  printTargets(targets);
  console.log(`results: ${saveResults('copying', smoke, { servers: SERVERS, fileBytes: FILE_SIZE, connections: CONNECTIONS, seconds: SECONDS, reps: REPS, runs: Object.fromEntries(runs), targets })}`);
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
