/**
 * http: static files over HTTP/1.1 on 127.0.0.1, one server process at a time.
 *
 *   pagewarm serveFile (defaults: open-file cache on), serveFile with the
 *   cache's `revalidateMs: 1000` (a hit skips the stat for a second) and with
 *   `cache: false`, pillarjs send, @fastify/static, plain createReadStream,
 *   a revalidating in-memory cache of small files and a transferToSync fast
 *   path built from pagewarm's public calls (design alternatives, see
 *   http/server.ts), and nginx (Debian's
 *   package, started here on 127.0.0.1 with one worker and `sendfile on`).
 *
 * Load from wrk (one thread) when installed, else autocannon: requests/s for a
 * 64 KiB file (32 connections) and throughput for a 256 MiB file (4
 * connections), with the server's CPU (from /proc, master + worker for nginx).
 * Servers run in rotated order each repetition; files are hot.
 *
 * nginx and wrk come from `bench/setup.sh` (apt-get install -y nginx wrk),
 * which this benchmark runs itself when either is missing and it runs as root
 * (pass --no-install to skip; nginx is then left out and autocannon is used).
 *
 * usage: bench/http.ts [--smoke] [--reps=N] [--no-install] [--only=NAME,NAME...]
 *   --only keeps the servers whose names contain one of the given words
 *   (e.g. --only=serveFile,memory,nginx); the default runs them all.
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import * as pw from '../lib/index';
import {
  GiB, KiB, makeFile, median, MiB, pairedRatio, parseFlags, printTable, printTargets, procCpuSeconds, LAUNCH, ROOT,
  rotate, saveResults, sleep, target, TMP_DIR, type Flags, type Target,
} from './lib/common';
import { serveFile } from './http/server';

type ServerKind = 'pagewarm serveFile' | 'serveFile, revalidateMs: 1000' | 'serveFile, cache: false' | 'send' | '@fastify/static' | 'createReadStream' | 'memory cache' |
  'transferToSync (experiment)' | 'nginx' | 'node ceiling (res.end)' | 'express + serve-static' | 'express + serveStatic' |
  'fastify + pagewarm/fastify' | 'express ceiling (res.end)' | 'fastify ceiling (res.end)';
const NODE_KIND: Partial<Record<ServerKind, string>> = {
  'pagewarm serveFile': 'pagewarm', 'serveFile, revalidateMs: 1000': 'pagewarm-revalidate', 'serveFile, cache: false': 'pagewarm-nocache', send: 'send', '@fastify/static': 'fastify-static',
  createReadStream: 'stream', 'memory cache': 'memory', 'transferToSync (experiment)': 'fastpath',
  'node ceiling (res.end)': 'ceiling', 'express + serve-static': 'express-serve-static', 'express + serveStatic': 'express-pagewarm',
  'fastify + pagewarm/fastify': 'fastify-pagewarm', 'express ceiling (res.end)': 'express-ceiling', 'fastify ceiling (res.end)': 'fastify-ceiling',
};

function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    if (existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

interface Running {
  port: number;
  pids: () => number[];
  stop: () => Promise<void>;
}

async function startNginx(nginx: string, root: string, work: string): Promise<Running> {
  const port = await freePort();
  mkdirSync(work, { recursive: true });
  const conf = join(work, 'nginx.conf');
  writeFileSync(conf, `daemon off;
master_process on;
worker_processes 1;
pid ${join(work, 'nginx.pid')};
error_log ${join(work, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  default_type application/octet-stream;
  client_body_temp_path ${work}/body;
  proxy_temp_path ${work}/proxy;
  fastcgi_temp_path ${work}/fastcgi;
  uwsgi_temp_path ${work}/uwsgi;
  scgi_temp_path ${work}/scgi;
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`);
  const child = spawn(nginx, ['-c', conf, '-p', work, '-e', join(work, 'error.log')], { stdio: 'inherit' });
  for (let i = 0; i < 100; i++) {
    await sleep(50);
    try {
      await new Promise<void>((resolve, reject) => {
        const s = require('node:net').connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve();
        });
        s.once('error', reject);
      });
      break;
    } catch { /* not yet */ }
  }
  const pids = () => {
    const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return [child.pid!, ...kids];
  };
  return {
    port, pids,
    stop: async () => {
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), sleep(5000)]);
    },
  };
}

async function startNode(kind: string, root: string): Promise<Running> {
  const child: ChildProcess = fork(LAUNCH, [join(__dirname, 'http', 'server.ts'), kind, root], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind} server did not start`)), 60_000);
    child.once('message', (m: { port: number }) => {
      clearTimeout(timer);
      resolve(m.port);
    });
    child.once('exit', (code) => reject(new Error(`${kind} server exited (${code})`)));
  });
  return {
    port, pids: () => [child.pid!],
    stop: async () => {
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), sleep(5000)]);
    },
  };
}

interface Load {
  requestsPerSec: number;
  bytesPerSec: number;
  errors: number;
}

function parseSize(s: string): number {
  const m = /([\d.]+)([KMGT]?B)/.exec(s);
  if (!m) return NaN;
  const mult: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };
  return Number(m[1]) * mult[m[2]];
}

async function load(url: string, connections: number, seconds: number, wrk: string | null): Promise<Load> {
  if (wrk) {
    const r = spawnSync(wrk, ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '30s', url], { encoding: 'utf8', timeout: (seconds + 60) * 1000 });
    const out = r.stdout ?? '';
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
    const tps = /Transfer\/sec:\s+(\S+)/.exec(out);
    const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
    const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    if (!rps || !tps) throw new Error(`cannot parse wrk output: ${out}${r.stderr}`);
    const errors = (non2xx ? Number(non2xx[1]) : 0) + (sockErr ? sockErr.slice(1).map(Number).reduce((a, b) => a + b, 0) : 0);
    return { requestsPerSec: Number(rps[1]), bytesPerSec: parseSize(tps[1]), errors };
  }
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const autocannon = require('autocannon') as (o: object) => Promise<{ requests: { average: number }; throughput: { average: number }; errors: number; non2xx: number }>;
  const r = await autocannon({ url, connections, duration: seconds });
  return { requestsPerSec: r.requests.average, bytesPerSec: r.throughput.average, errors: r.errors + r.non2xx };
}

interface Sample {
  server: ServerKind;
  rep: number;
  small: Load;
  smallCpuPerReqUs: number;
  large: Load;
  largeCpuPerGiB: number;
}

export async function main(flags: Flags = parseFlags()): Promise<void> {
  const smoke = flags.smoke;
  const reps = flags.reps ?? (smoke ? 1 : 3);
  const smallSecs = smoke ? 1 : 5;
  const largeSecs = smoke ? 2 : 8;
  const largeSize = (smoke ? 16 : 256) * MiB;
  let nginx = which('nginx');
  let wrk = which('wrk');
  if ((!nginx || !wrk) && flags.raw['no-install'] !== 'true' && process.getuid?.() === 0) {
    console.log('http: nginx and/or wrk missing: running bench/setup.sh (apt-get install -y nginx wrk)');
    const r = spawnSync('sh', [join(__dirname, 'setup.sh')], { stdio: 'inherit', timeout: 600_000 });
    if (r.status !== 0) console.log('http: bench/setup.sh failed; continuing without what is missing');
    nginx = which('nginx');
    wrk = which('wrk');
  }
  const loadTool = wrk ? `${spawnSync(wrk, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0].replace(/ Copyright.*/, '').trim()} (1 thread)` : 'autocannon';
  const nginxVersion = nginx ? spawnSync(nginx, ['-v'], { encoding: 'utf8' }).stderr.trim() : null;
  const servers: ServerKind[] = [];
  if (serveFile) servers.push('pagewarm serveFile', 'serveFile, revalidateMs: 1000', 'serveFile, cache: false');
  else console.log('pagewarm serveFile skipped: no zero-copy send here (native addon not loaded)');
  servers.push('node ceiling (res.end)', 'express ceiling (res.end)', 'fastify ceiling (res.end)', 'express + serve-static');
  if (serveFile) servers.push('express + serveStatic');
  servers.push('@fastify/static');
  if (serveFile) servers.push('fastify + pagewarm/fastify');
  servers.push('send', 'createReadStream', 'memory cache');
  if (serveFile) servers.push('transferToSync (experiment)');
  if (nginx) servers.push('nginx');
  else console.log('nginx not installed: left out');
  const only = flags.raw.only?.split(',').filter(Boolean);
  if (only) servers.splice(0, servers.length, ...servers.filter((k) => only.some((w) => k.includes(w))));
  const root = join(TMP_DIR, `pagewarm-bench-http-${process.pid}`);
  const work = join(TMP_DIR, `pagewarm-bench-nginx-${process.pid}`);
  mkdirSync(root, { recursive: true, mode: 0o755 });
  makeFile(join(root, 'small.bin'), 64 * KiB);
  makeFile(join(root, 'large.bin'), largeSize);
  const samples: Sample[] = [];
  const targets: Target[] = [];
  console.log(`\nhttp: ${loadTool}; 64 KiB file x 32 connections x ${smallSecs} s; ${largeSize / MiB} MiB file x 4 connections x ${largeSecs} s; ${reps} rotated repetitions${nginxVersion ? `; ${nginxVersion}` : ''}`);
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const server of rotate(servers, rep)) {
        for (const f of ['small.bin', 'large.bin']) {
          const fh = await open(join(root, f), 'r');
          await pw.prepareForRead(fh);
          await fh.close();
        }
        const running = server === 'nginx' ? await startNginx(nginx!, root, work) : await startNode(NODE_KIND[server]!, root);
        try {
          const base = `http://127.0.0.1:${running.port}`;
          await load(`${base}/small.bin`, 32, 1, wrk); // warm-up, untimed
          const cpu = () => running.pids().reduce((a, p) => a + procCpuSeconds(p), 0);
          let c0 = cpu();
          const small = await load(`${base}/small.bin`, 32, smallSecs, wrk);
          const smallCpu = cpu() - c0;
          c0 = cpu();
          const large = await load(`${base}/large.bin`, 4, largeSecs, wrk);
          const largeCpu = cpu() - c0;
          const s: Sample = {
            server, rep, small, large,
            smallCpuPerReqUs: (smallCpu / (small.requestsPerSec * smallSecs)) * 1e6,
            largeCpuPerGiB: largeCpu / ((large.bytesPerSec * largeSecs) / GiB),
          };
          samples.push(s);
          console.log(`  rep ${rep + 1} ${server.padEnd(18)} 64 KiB: ${small.requestsPerSec.toFixed(0)} req/s (${s.smallCpuPerReqUs.toFixed(0)} us CPU/req)  ${largeSize / MiB} MiB: ${(large.bytesPerSec / 1e9).toFixed(2)} GB/s (${s.largeCpuPerGiB.toFixed(2)} CPU s/GiB)${small.errors + large.errors ? `  errors ${small.errors + large.errors}` : ''}`);
        } finally {
          await running.stop();
        }
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
  const of = (k: ServerKind) => samples.filter((s) => s.server === k);
  const ng = of('nginx');
  printTable(`http [hot files; ${loadTool}] (medians of ${reps})`,
    ['server', '64 KiB req/s', 'vs nginx', 'CPU us/req', `${largeSize / MiB} MiB GB/s`, 'vs nginx', 'CPU s/GiB', 'errors'],
    servers.map((k) => {
      const s = of(k);
      return [k, median(s.map((x) => x.small.requestsPerSec)),
        ng.length ? pairedRatio(s.map((x) => x.small.requestsPerSec), ng.map((x) => x.small.requestsPerSec)) : NaN,
        median(s.map((x) => x.smallCpuPerReqUs)),
        median(s.map((x) => x.large.bytesPerSec)) / 1e9,
        ng.length ? pairedRatio(s.map((x) => x.large.bytesPerSec), ng.map((x) => x.large.bytesPerSec)) : NaN,
        median(s.map((x) => x.largeCpuPerGiB)),
        s.reduce((a, x) => a + x.small.errors + x.large.errors, 0)];
    }));
  const pws = of('pagewarm serveFile');
  if (pws.length && ng.length) {
    const a = pairedRatio(pws.map((x) => x.small.requestsPerSec), ng.map((x) => x.small.requestsPerSec));
    targets.push(target('http 64 KiB req/s: serveFile / nginx', '>= 0.8', a, a >= 0.8));
    const b = pairedRatio(pws.map((x) => x.large.bytesPerSec), ng.map((x) => x.large.bytesPerSec));
    targets.push(target(`http ${largeSize / MiB} MiB throughput: serveFile / nginx`, '>= 0.8', b, b >= 0.8));
  }
  // The frameworks: pagewarm's module against the framework's own static module, in the same run.
  const pair = (ours: ServerKind, theirs: ServerKind, what: string): void => {
    const a = of(ours);
    const b = of(theirs);
    if (!a.length || !b.length) return;
    const rps = pairedRatio(a.map((x) => x.small.requestsPerSec), b.map((x) => x.small.requestsPerSec));
    targets.push(target(`${what} 64 KiB req/s: ${ours} / ${theirs}`, '>= 3', rps, rps >= 3));
    const cpu = pairedRatio(a.map((x) => x.largeCpuPerGiB), b.map((x) => x.largeCpuPerGiB));
    targets.push(target(`${what} ${largeSize / MiB} MiB CPU per GiB: ${ours} / ${theirs}`, '<= 0.5', cpu, cpu <= 0.5));
  };
  pair('express + serveStatic', 'express + serve-static', 'Express');
  pair('fastify + pagewarm/fastify', '@fastify/static', 'Fastify');
  const ceil = of('node ceiling (res.end)');
  // Each against the ceiling of the stack it runs in (the framework's own cost is not pagewarm's).
  for (const [k, c] of [['pagewarm serveFile', ceil], ['serveFile, revalidateMs: 1000', ceil], ['express + serveStatic', of('express ceiling (res.end)')],
    ['fastify + pagewarm/fastify', of('fastify ceiling (res.end)')]] as [ServerKind, Sample[]][]) {
    const a = of(k);
    if (!a.length || !c.length) continue;
    const r = pairedRatio(a.map((x) => x.small.requestsPerSec), c.map((x) => x.small.requestsPerSec));
    targets.push(target(`64 KiB req/s: ${k} / ${c[0]!.server}`, '>= 0.95', r, r >= 0.95));
  }
  printTargets(targets);
  const file = saveResults('http', smoke, { loadTool, nginxVersion, largeSizeBytes: largeSize, reps, samples, targets });
  console.log(`\nresults: ${file}`);
}

if (require.main === module) {
  main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
