/**
 * Shell patterns for --include and --exclude, as fnmatch(3) reads them with
 * no flags (vmtouch's -I and -i): `*` any run of characters, `?` one,
 * `[abc]`, `[a-z]` and `[!abc]` (or `[^abc]`) one of a set, `\x` the
 * character x. A pattern without `/` is matched against a file's or
 * directory's name; one with `/` against its path below the PATH it was
 * found under, where `*` and `?` do not match `/` and `**` matches any
 * number of directories.
 */

/** A compiled pattern. */
export interface Glob {
  readonly pattern: string;
  /** Whether the pattern names a path (it has a `/`), not just a name. */
  readonly byPath: boolean;
  test(name: string, relativePath: string): boolean;
}

/** Compiles `pattern`; throws SyntaxError-free: a malformed set is read literally, as fnmatch does. */
export function compileGlob(pattern: string): Glob {
  const byPath = pattern.includes('/');
  const re = new RegExp(`^${toRegExp(pattern.replace(/^\/+/, ''), byPath)}$`, 's');
  return { pattern, byPath, test: (name, relativePath) => re.test(byPath ? relativePath : name) };
}

function toRegExp(p: string, byPath: boolean): string {
  const any = byPath ? '[^/]' : '.';
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '\\' && i + 1 < p.length) {
      out += escape(p[++i]!);
    } else if (c === '*') {
      if (byPath && p[i + 1] === '*') {
        // `**/` any directories (none included), `**` at the end anything.
        i++;
        if (p[i + 1] === '/') {
          i++;
          out += '(?:.*/)?';
        } else {
          out += '.*';
        }
      } else {
        out += `${any}*`;
      }
    } else if (c === '?') {
      out += any;
    } else if (c === '[') {
      const end = setEnd(p, i);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = p.slice(i + 1, end);
      let negate = false;
      if (body[0] === '!' || body[0] === '^') {
        negate = true;
        body = body.slice(1);
      }
      const chars = body.replace(/\\/g, '\\\\').replace(/\]/g, '\\]').replace(/\[/g, '\\[').replace(/\^/g, '\\^');
      out += negate ? `[^${chars}${byPath ? '/' : ''}]` : `[${chars}]`;
      i = end;
    } else {
      out += escape(c);
    }
  }
  return out;
}

/** The index of the `]` closing the set opened at `start`, or -1 (then `[` is literal). */
function setEnd(p: string, start: number): number {
  let i = start + 1;
  if (p[i] === '!' || p[i] === '^') i++;
  if (p[i] === ']') i++; // a leading ] is a member
  for (; i < p.length; i++) if (p[i] === ']') return i;
  return -1;
}

function escape(c: string): string {
  return /[.*+?^${}()|[\]\\/-]/.test(c) ? `\\${c}` : c;
}
