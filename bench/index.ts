/**
 * `npm run bench`: runs every benchmark, one process each, in sequence, and
 * prints their tables. Flags are passed through (`--smoke` for tiny sizes,
 * `--disk=throttled|unthrottled|both`, `--reps=N`). Name benchmarks to run
 * only those: `npm run bench -- warm send`.
 *
 * Benchmarks print MET / MISSED per target and exit 0 either way; this exits
 * non-zero only if a benchmark crashed.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { machine, nowMs, REGISTER, ROOT } from './lib/common';

export const BENCHMARKS = ['broker-latency', 'warm', 'isolation', 'send', 'http', 'files', 'copying'] as const;

function main(): number {
  const args = process.argv.slice(2);
  const names = args.filter((a) => !a.startsWith('--'));
  const flags = args.filter((a) => a.startsWith('--'));
  const unknown = names.filter((n) => !(BENCHMARKS as readonly string[]).includes(n));
  if (unknown.length) {
    console.error(`unknown benchmark(s): ${unknown.join(', ')}; choose from ${BENCHMARKS.join(', ')}`);
    return 2;
  }
  const run = names.length ? names : [...BENCHMARKS];
  const m = machine();
  console.log(`pagewarm benchmarks, ${m.date}: ${m.nproc} CPUs (${m.cpu}), Linux ${m.kernel}, Node ${m.node}, ${m.memGiB} GiB, files on ${m.fs}`);
  const failed: string[] = [];
  for (const name of run) {
    console.log(`\n=== ${name} ${flags.join(' ')}`);
    const t0 = nowMs();
    const r = spawnSync(process.execPath, ['-r', REGISTER, join(__dirname, `${name}.ts`), ...flags], { stdio: 'inherit', cwd: ROOT });
    console.log(`=== ${name}: ${r.status === 0 ? 'done' : `FAILED (${r.status ?? r.signal})`} in ${((nowMs() - t0) / 1000).toFixed(0)} s`);
    if (r.status !== 0) failed.push(name);
  }
  if (failed.length) console.log(`\nfailed: ${failed.join(', ')}`);
  return failed.length ? 1 : 0;
}

process.exitCode = main();
