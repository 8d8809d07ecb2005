/**
 * Loads the native binding once, for the whole package, and describes the
 * calls it offers. Where it cannot load (another OS, a failed build) or when
 * PAGEWARM_FORCE_FALLBACK=1, the portable fallback stands in with the same
 * calls. Nothing here is public API.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Binding } from './binding';

export type { Binding, NativeResidency, NativeStats } from './binding';

/** Finds the package root from wherever this file was compiled to. */
export function packageRoot(from = __dirname): string {
  let dir = from;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === 'pagewarm') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('pagewarm: cannot find the package root');
    dir = parent;
  }
}

/**
 * The portable fallback, required only when it is used: a process with the
 * native binding never loads its modules (a fifth of the package's load
 * time, which every run of the command pays).
 */
function fallbackBinding(): Binding {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return (require('../fallback/index') as typeof import('../fallback/index')).fallbackBinding();
}

interface Loaded {
  binding: Binding;
  native: boolean;
  /** Why the fallback is in use, when it is. */
  reason?: string;
}

function load(): Loaded {
  if (process.env.PAGEWARM_FORCE_FALLBACK === '1') {
    return { binding: fallbackBinding(), native: false, reason: 'PAGEWARM_FORCE_FALLBACK=1' };
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => Binding & { unsupported?: boolean };
    const binding = nodeGypBuild(packageRoot());
    if (binding.unsupported) return { binding: fallbackBinding(), native: false, reason: `no native support on ${process.platform}` };
    return { binding, native: true };
  } catch (err) {
    const reason = `native addon did not load: ${(err as Error).message}`;
    warnFallback(reason);
    return { binding: fallbackBinding(), native: false, reason };
  }
}

/**
 * On Linux the addon is expected to load (a prebuild or a source build): when
 * it does not, say so once (on the main thread), since every warm-up then
 * copies on the libuv pool and every send copies through JavaScript.
 * Elsewhere the fallback is the normal path and nothing is said.
 */
function warnFallback(reason: string): void {
  if (process.platform !== 'linux') return;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  if (!(require('node:worker_threads') as typeof import('node:worker_threads')).isMainThread) return;
  process.emitWarning(
    `pagewarm: ${reason}. Using the portable fallback: warm-ups read on the libuv pool, sends copy, residency is unknown. ` +
      'Set PAGEWARM_FORCE_FALLBACK=1 to choose the fallback without this warning.',
    { code: 'PAGEWARM_FALLBACK' },
  );
}

const loaded = load();

/** The binding in use: native, or the portable fallback. */
export const binding: Binding = loaded.binding;
/** True when the native addon is in use. */
export const isNative: boolean = loaded.native;
/** Why the fallback is in use (undefined when native). */
export const fallbackReason: string | undefined = loaded.reason;

let lastId = 0;
/** A job id unique within this thread, for cancel(). */
export function nextId(): number {
  lastId = lastId >= 0xffffffff ? 1 : lastId + 1;
  return lastId;
}
