/**
 * The walk of directory trees (the command's PATHs, snapshot()'s paths):
 * the regular files under each (block devices only when named), and what
 * was skipped. It reads each directory
 * once with its entries' types (readdir with file types: no stat per file;
 * see BENCHMARKS.md for the walks compared), stats only directories (for
 * mounts and loops) and, with -L, symbolic links. Hard links are found
 * later, when the files are opened (device and inode), and counted once.
 * It runs on the calling thread with synchronous fs calls.
 */
import * as fs from 'node:fs';
import type { Glob } from './glob';

/** How to walk. */
export interface WalkOptions {
  /** The paths walked when none are given to run() / walk(). */
  paths: string[];
  /** Directory levels to descend below each path; Infinity: no limit. */
  maxDepth: number;
  /** Follow symbolic links (loops end; a directory is entered once). */
  dereference: boolean;
  /** Enter directories on other filesystems than the path's. */
  crossMounts: boolean;
  /** When any, only files whose name (or path below the walked path) matches one are taken. */
  include: Glob[];
  /** Files and directories matching one are skipped. */
  exclude: Glob[];
}

/** The walk: regular files under each PATH, and what it skipped. */
export class Walk {
  /** The files run() found, in walk order (each directory's names sorted). */
  readonly files: string[] = [];
  /** Directories entered. */
  directories = 0;
  readonly skipped = { symlinks: 0, otherMounts: 0, special: 0, hardLinks: 0, brokenLinks: 0, excluded: 0, tooLarge: 0 };
  private readonly seenDirs = new Set<string>();

  /**
   * @param opts The paths and the walk's options (maxDepth, dereference, crossMounts, include, exclude).
   * @param fail Called for a path that cannot be walked; the walk goes on.
   * @param note Called with a message about a skipped PATH (a symbolic link without -L).
   */
  constructor(
    private readonly opts: WalkOptions,
    private readonly fail: (p: string, err: unknown) => void,
    private readonly note: (message: string) => void,
  ) {}

  /** Walks every path of `paths` (the PATHs, or those of --files-from), filling {@link files}. */
  run(paths: Iterable<string> = this.opts.paths): void {
    for (const chunk of this.walk(paths)) for (const file of chunk) this.files.push(file);
  }

  /**
   * Walks every path of `paths` as the files are asked for, yielding them in
   * runs (a directory's files up to its next subdirectory; a file named in
   * `paths` alone): a consumer can start on the first files while the walk
   * goes on (the command does, so the walk and the work on pagewarm's threads
   * overlap). Block devices are taken only where named. The counts are
   * complete once it is exhausted; {@link files} is left alone.
   */
  *walk(paths: Iterable<string> = this.opts.paths): Generator<string[], void, undefined> {
    for (const arg of paths) {
      let st: fs.Stats;
      try {
        st = this.opts.dereference ? fs.statSync(arg) : fs.lstatSync(arg);
      } catch (err) {
        this.fail(arg, err);
        continue;
      }
      if (st.isSymbolicLink()) {
        this.skipped.symlinks++;
        this.note(`skipping symbolic link '${arg}' (use -L to follow symbolic links)`);
        continue;
      }
      if (st.isDirectory()) yield* this.directory(arg, '', st, 0, st.dev);
      else if (st.isFile() || st.isBlockDevice()) yield [arg];
      else this.fail(arg, Object.assign(new Error('not a regular file, block device or directory'), { code: 'EINVAL' }));
    }
  }

  /** Walks directory `p` (`rel` below its PATH), described by `st`. */
  private *directory(p: string, rel: string, st: fs.Stats, depth: number, rootDev: number): Generator<string[], void, undefined> {
    const key = `${st.dev}:${st.ino}`;
    if (this.seenDirs.has(key)) return; // a loop, or the same tree twice through -L
    this.seenDirs.add(key);
    this.directories++;
    if (depth >= this.opts.maxDepth) return;
    let dirents: fs.Dirent[];
    try {
      dirents = fs.readdirSync(p, { withFileTypes: true });
    } catch (err) {
      this.fail(p, err);
      return;
    }
    dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const { include, exclude } = this.opts;
    let run: string[] = [];
    for (const d of dirents) {
      const name = d.name;
      const child = p.endsWith('/') ? p + name : `${p}/${name}`;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (exclude.length > 0 && exclude.some((g) => g.test(name, childRel))) {
        this.skipped.excluded++;
        continue;
      }
      let isDir = d.isDirectory();
      let isFile = d.isFile();
      let dirStat: fs.Stats | undefined;
      if (d.isSymbolicLink()) {
        if (!this.opts.dereference) {
          this.skipped.symlinks++;
          continue;
        }
        try {
          dirStat = fs.statSync(child);
        } catch {
          this.skipped.brokenLinks++;
          continue;
        }
        isDir = dirStat.isDirectory();
        isFile = dirStat.isFile();
      }
      if (isFile) {
        if (include.length > 0 && !include.some((g) => g.test(name, childRel))) {
          this.skipped.excluded++;
          continue;
        }
        run.push(child);
        continue;
      }
      if (!isDir) {
        this.skipped.special++;
        continue;
      }
      try {
        dirStat ??= fs.lstatSync(child);
      } catch (err) {
        this.fail(child, err); // gone since the listing, or unreadable
        continue;
      }
      if (dirStat.dev !== rootDev && !this.opts.crossMounts) {
        this.skipped.otherMounts++;
        continue;
      }
      if (run.length > 0) {
        yield run;
        run = [];
      }
      yield* this.directory(child, childRel, dirStat, depth + 1, rootDev);
    }
    if (run.length > 0) yield run;
  }
}
