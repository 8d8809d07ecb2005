/**
 * What a response knows about the file it sends: the fields of its stat, and
 * the header values derived from them (weak ETag, Last-Modified,
 * Content-Type), made once per version of the file.
 */
import * as fs from 'node:fs';
import { contentType } from './mime';

/** What a response needs to know about a regular file (from stat or fstat). */
export interface Meta {
  isFile: boolean;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  /** Header values derived from the fields above, made once per Meta (a cache hit reuses its entry's Meta while size and mtime hold). */
  derived?: Derived;
}

/** Validator and type header values for one version of one file. */
export interface Derived {
  etag: string;
  /** mtime in whole seconds (HTTP dates have no more). */
  mtime: number;
  lastModified: string;
  contentType: string;
  /** The name the Content-Type came from, and the coding of a precompressed variant: what these values were derived for. */
  forType: string;
  encoding: string | undefined;
}

/** `fstat(fd)`, on the libuv threadpool. Rejects with its system error. */
export function fstat(fd: number): Promise<fs.Stats> {
  return new Promise((resolve, reject) => fs.fstat(fd, (err, st) => (err ? reject(err) : resolve(st))));
}

/** The fields of `st` that a response needs. */
export function toMeta(st: fs.Stats): Meta {
  return { isFile: st.isFile(), dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
}

/**
 * The header values for one version of a file: a weak ETag from its size
 * and mtime (milliseconds, both in hex; a precompressed variant's ends in
 * its coding, `W/"size-mtime-br"`), the mtime in whole seconds and as an
 * HTTP-date, and the Content-Type of `typeTarget`'s extension (the original
 * file's name for a variant).
 */
export function derive(meta: Meta, typeTarget: string, encoding?: string): Derived {
  const mtimeMs = Math.floor(meta.mtimeMs);
  const mtime = Math.floor(mtimeMs / 1000);
  const tag = `${meta.size.toString(16)}-${mtimeMs.toString(16)}${encoding === undefined ? '' : `-${encoding}`}`;
  return {
    etag: `W/"${tag}"`,
    mtime,
    lastModified: new Date(mtime * 1000).toUTCString(),
    contentType: contentType(typeTarget),
    forType: typeTarget,
    encoding,
  };
}
