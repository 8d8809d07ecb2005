/**
 * Where a request may lead: the request target resolved against root (NUL,
 * `..` and malformed encodings refused), the opened file's real path
 * checked against root's real path, and the dotfiles judgement. See
 * docs/http.md, "Security".
 */
import { realpath } from 'node:fs/promises';
import { join, resolve as resolvePath, sep } from 'node:path';
import { descriptorRealPath, inside } from '../core/paths';
import { invalidArgType, invalidArgValue } from '../core/errors';
import { requestPath } from './conditional';

/** The file system path for a request path, or the status that refuses it. */
export function resolveTarget(path: string, root: string | undefined): string | number {
  let p = path;
  if (root !== undefined) {
    const pathOnly = requestPath(p); // origin-form, absolute-form; the others: 400
    if (typeof pathOnly === 'number') return pathOnly;
    p = pathOnly;
    if (p.includes('%')) {
      try {
        p = decodeURIComponent(p);
      } catch {
        return 400; // malformed percent-encoding
      }
    }
  }
  if (p.includes('\0')) return 400;
  // Backslashes are not separators on Linux, but a "..\\" is never a
  // legitimate request either: refuse dot-dot segments split on both.
  if (p.includes('..') && p.split(/[\\/]/).includes('..')) return 403;
  if (root === undefined) return p === '' ? 404 : p;
  let base = resolvedRoots.get(root);
  if (base === undefined) {
    base = resolvePath(root); // relative roots resolve against the cwd of their first use
    if (resolvedRoots.size >= 64) resolvedRoots.clear();
    resolvedRoots.set(root, base);
  }
  const full = join(base, p);
  if (full !== base && !full.startsWith(base.endsWith(sep) ? base : base + sep)) return 403;
  return full;
}

/**
 * The directory a root's request paths are joined to: resolveTarget's
 * `resolve(root)`, made at the root's first use (resolveTarget has just
 * made it, synchronously, whenever this is asked).
 */
export function baseOf(root: string): string {
  return resolvedRoots.get(root) ?? resolvePath(root);
}

/**
 * The real root that the file actually opened (after every symlink) lies
 * inside, or undefined when it lies outside root or its location cannot be
 * known for certain. Judged on the descriptor (see descriptorRealPath), not
 * on the name, which may lead elsewhere by now.
 */
export async function confined(fd: number, opened: string, base: string): Promise<string | undefined> {
  const real = await descriptorRealPath(fd, opened);
  if (real === undefined) return undefined;
  const realRoot = await realRootOf(base, false);
  if (realRoot !== undefined && inside(real, realRoot)) return realRoot;
  const again = await realRootOf(base, true);
  return again !== undefined && again !== realRoot && inside(real, again) ? again : undefined;
}

/**
 * The real path of the root whose requests are joined to `base`, as the
 * last confinement check found it (see {@link confined}), or undefined when
 * none is known (never checked, or root could not be resolved). Synchronous:
 * the open-file cache's hit check compares against it.
 */
export function knownRealRoot(base: string): string | undefined {
  return realRoots.get(base);
}

/** The dotfiles option, validated. */
export function toDotfiles(value: unknown): 'ignore' | 'deny' | 'allow' {
  if (value === undefined) return 'ignore';
  if (typeof value !== 'string') throw invalidArgType('options.dotfiles', 'of type string', value);
  if (value !== 'ignore' && value !== 'deny' && value !== 'allow') {
    throw invalidArgValue('options.dotfiles', value, "must be one of: 'ignore', 'deny', 'allow'");
  }
  return value;
}

/**
 * The part of a resolved target that the request named: the path below
 * `base`, the directory it was joined to (the whole path without root).
 */
export function requestPart(target: string, base: string | undefined): string {
  if (base === undefined) return target;
  return target.startsWith(base) ? target.slice(base.length) : target;
}

/** Whether a path has a segment starting with a dot, other than `.` itself (send's containsDotFile). */
export function hasDotSegment(path: string): boolean {
  if (!path.includes('.')) return false;
  return path.split('/').some((part) => part.length > 1 && part[0] === '.');
}

/** `resolve(root)` per root string, at most 64. */
const resolvedRoots = new Map<string, string>();

/**
 * The real path of each root directory (by baseOf(root): the directory the
 * request path was joined to, never root resolved again against a cwd that
 * may have changed since), resolved once (and again when a check fails
 * against it, in case root was moved or relinked). Bounded: at most 64 roots.
 */
const realRoots = new Map<string, string>();

async function realRootOf(base: string, fresh: boolean): Promise<string | undefined> {
  let real = fresh ? undefined : realRoots.get(base);
  if (real !== undefined) return real;
  try {
    real = await realpath(base);
  } catch {
    realRoots.delete(base);
    return undefined;
  }
  if (realRoots.size >= 64) realRoots.clear();
  realRoots.set(base, real);
  return real;
}
