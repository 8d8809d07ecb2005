/**
 * The walk of the command's PATHs: the regular files under each (block
 * devices only when named), each file once, and what was skipped. It runs on
 * the calling thread, with synchronous fs calls, before any file is handled.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Options } from './args';

/** One file as the walk found it. */
export interface Entry {
  path: string;
  /** Named on the command line (block devices are taken only then). */
  explicit: boolean;
}

/** The walk: regular files under each PATH, and what it skipped. */
export class Walk {
  /** The files found, in walk order (each directory's names sorted). */
  readonly entries: Entry[] = [];
  /** Directories entered. */
  directories = 0;
  readonly skipped = { symlinks: 0, otherMounts: 0, special: 0, hardLinks: 0, brokenLinks: 0 };
  private readonly seenDirs = new Set<string>();
  private readonly seenFiles = new Set<string>();

  /**
   * @param opts The paths and the walk's options (maxDepth, dereference, crossMounts).
   * @param fail Called for a path that cannot be walked; the walk goes on.
   * @param note Called with a message about a skipped PATH (a symbolic link without -L).
   */
  constructor(
    private readonly opts: Options,
    private readonly fail: (p: string, err: unknown) => void,
    private readonly note: (message: string) => void,
  ) {}

  /** Walks every PATH, filling {@link entries}, {@link directories} and {@link skipped}. */
  run(): void {
    for (const arg of this.opts.paths) {
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
      if (!st.isDirectory() && !st.isFile() && !st.isBlockDevice()) {
        const err = Object.assign(new Error('not a regular file, block device or directory'), { code: 'EINVAL' });
        this.fail(arg, err);
        continue;
      }
      this.visit(arg, st, 0, st.dev, true);
    }
  }

  private visit(p: string, st: fs.Stats, depth: number, rootDev: number, explicit: boolean): void {
    const key = `${st.dev}:${st.ino}`;
    if (!st.isDirectory()) {
      // A file reached twice (hard links, or -L) is handled once, as vmtouch does.
      if (this.seenFiles.has(key)) {
        this.skipped.hardLinks++;
        return;
      }
      this.seenFiles.add(key);
      this.entries.push({ path: p, explicit });
      return;
    }
    if (this.seenDirs.has(key)) return; // a loop, or the same tree twice through -L
    this.seenDirs.add(key);
    this.directories++;
    if (depth >= this.opts.maxDepth) return;
    let names: string[];
    try {
      names = fs.readdirSync(p);
    } catch (err) {
      this.fail(p, err);
      return;
    }
    names.sort();
    for (const name of names) {
      const child = path.join(p, name);
      let cst: fs.Stats;
      try {
        cst = fs.lstatSync(child);
        if (cst.isSymbolicLink()) {
          if (!this.opts.dereference) {
            this.skipped.symlinks++;
            continue;
          }
          try {
            cst = fs.statSync(child);
          } catch {
            this.skipped.brokenLinks++;
            continue;
          }
        }
      } catch (err) {
        this.fail(child, err);
        continue;
      }
      if (!cst.isFile() && !cst.isDirectory()) {
        this.skipped.special++;
        continue;
      }
      if (cst.dev !== rootDev && !this.opts.crossMounts) {
        this.skipped.otherMounts++;
        continue;
      }
      this.visit(child, cst, depth + 1, rootDev, false);
    }
  }
}
