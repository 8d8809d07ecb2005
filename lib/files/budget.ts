/**
 * Memory budgets for warming: `budget` as bytes, or as a percentage of the
 * memory this process can fill (the lower of MemAvailable and its memory
 * cgroup's headroom, v2 `memory.max - memory.current` or v1
 * `memory.limit_in_bytes - memory.usage_in_bytes`, over the cgroup and its
 * ancestors), re-read before every batch.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import type { BudgetHandle } from '../core/binding';
import { binding } from '../core/native';
import { invalidArgType, invalidArgValue, outOfRange } from '../core/errors';

/** What the memory of this process can take now, in bytes. */
export interface MemoryRoom {
  /** MemAvailable from /proc/meminfo (Infinity where there is none). */
  available: number;
  /** The tightest headroom of this process's memory cgroup and its ancestors; Infinity without a limit. */
  cgroup: number;
  /** The lower of the two. */
  fillable: number;
}

/** A budget option, checked: bytes, or a percentage of the fillable memory. */
export type BudgetSpec = { bytes: number } | { percent: number };

/**
 * Checks a `budget` option: a byte count (a safe integer >= 0), or a string
 * `'<n>%'` with 0 < n <= 100. undefined: no budget.
 * @throws TypeError / RangeError naming `name`.
 */
export function toBudgetSpec(value: unknown, name = 'options.budget'): BudgetSpec | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw outOfRange(name, '>= 0 and a safe integer', value);
    return { bytes: value };
  }
  if (typeof value === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value);
    const percent = m ? Number(m[1]) : NaN;
    if (!(percent > 0 && percent <= 100)) throw invalidArgValue(name, value, "must be a byte count or a percentage such as '50%' (0 < n <= 100)");
    return { percent };
  }
  throw invalidArgType(name, 'of type number or string', value);
}

/** The memory this process can fill now (see {@link MemoryRoom}). */
export function memoryRoom(): MemoryRoom {
  const available = memAvailable();
  const cgroup = cgroupRoom();
  return { available, cgroup, fillable: Math.min(available, cgroup) };
}

/**
 * A budget for one call: the native handle its batches share, kept to the
 * spec before each batch. With a percentage P of the fillable memory F0 at
 * the start, warming stops once P% of F0 has been read, or sooner when what
 * is fillable falls below (100 - P)% of F0 (others took the memory).
 */
export class Budget {
  readonly handle: BudgetHandle;
  private readonly floor: number;

  constructor(readonly spec: BudgetSpec) {
    if ('bytes' in spec) {
      this.handle = binding.budget(spec.bytes);
      this.floor = -Infinity;
    } else {
      const start = memoryRoom().fillable;
      const total = Number.isFinite(start) ? Math.floor((start * spec.percent) / 100) : Number.MAX_SAFE_INTEGER;
      this.handle = binding.budget(total);
      this.floor = Number.isFinite(start) ? start - total : -Infinity;
    }
  }

  /** Before each batch: with a percentage, the room is read again and the budget ends if it fell below the floor. */
  check(): void {
    if (!('percent' in this.spec) || this.floor === -Infinity) return;
    if (memoryRoom().fillable < this.floor) {
      const used = binding.budgetLimit(this.handle);
      binding.budgetLimit(this.handle, used);
    }
  }

  /** Bytes read against the budget so far. */
  used(): number {
    return binding.budgetLimit(this.handle);
  }
}

function memAvailable(): number {
  try {
    const m = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : Infinity;
  } catch {
    return Infinity;
  }
}

/** The tightest limit minus usage over this process's memory cgroup and its ancestors (v2, then v1). */
function cgroupRoom(): number {
  let lines: string[];
  try {
    lines = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return Infinity;
  }
  let room = Infinity;
  for (const line of lines) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (controllers === '') room = Math.min(room, walk('/sys/fs/cgroup', path, 'memory.max', 'memory.current'));
    else if (controllers!.split(',').includes('memory')) {
      room = Math.min(room, walk('/sys/fs/cgroup/memory', path, 'memory.limit_in_bytes', 'memory.usage_in_bytes'));
    }
  }
  return room;
}

/** min(limit - usage) from `path` up to the hierarchy's root, where both files can be read. */
function walk(mount: string, path: string, limitFile: string, usageFile: string): number {
  let room = Infinity;
  for (let p = path; ; p = p.slice(0, p.lastIndexOf('/'))) {
    const dir = join(mount, p);
    const limit = readNumber(join(dir, limitFile));
    const usage = readNumber(join(dir, usageFile));
    // v1 reports "no limit" as a huge number near 2^63.
    if (limit !== undefined && usage !== undefined && limit < 2 ** 60) room = Math.min(room, Math.max(0, limit - usage));
    if (p === '' || p === '/') break;
  }
  return room;
}

function readNumber(file: string): number | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    if (text === 'max') return Infinity;
    const n = Number(text);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}
