/**
 * `serveStatic(root, options)`: serveFile as a Connect/Express middleware,
 * with serve-static's options, meanings and defaults (index files,
 * directory redirects, fallback extensions, fall-through). Where it
 * deliberately differs from serve-static: docs/http.md.
 */
import * as http from 'node:http';
import { invalidArgType, invalidArgValue } from '../core/errors';
import { toBoolean, toOptions } from '../core/validate';
import type { ServeFileResult } from './answer';
import { resolveTarget } from './confine';
import { cacheFor } from './file-cache';
import { toServePlan, type ServeFileOptions, type ServePlan } from './options';
import { endResponse } from './response';
import { checkRequest, serveTarget, type Miss } from './serve';
import type { Meter } from '../core/settle';
import { activeChannel, traceAsync } from '../core/trace';

/** Options for {@link serveStatic}: serveFile's (but `root`, given apart) and serve-static's own. */
export interface ServeStaticOptions extends Omit<ServeFileOptions, 'root'> {
  /**
   * Extensions tried, in order, for a path without one that names no file
   * (`['html']`: `/about` serves `about.html`). Default false (none).
   */
  extensions?: string[] | false;
  /**
   * true (the default): a request this middleware does not answer (not GET
   * or HEAD, no such file, a bad path) goes to `next()`, so later
   * middleware can answer it. false: such a request is an error, passed to
   * `next(err)` with `err.status` / `err.statusCode` (400, 403, 404, ...),
   * except other methods, answered 405 with `Allow: GET, HEAD`, as
   * serve-static does.
   */
  fallthrough?: boolean;
  /**
   * The files that answer for a directory path ending in `/`, tried in
   * order. Default `'index.html'`; false for none.
   */
  index?: string | string[] | false;
  /**
   * A directory path without a trailing slash gets a 301 to the path with
   * one (query kept, Location path-only and percent-encoded). Default true;
   * false: such a path is a miss (404, or `next()`).
   */
  redirect?: boolean;
}

/** A Connect/Express `next`. */
export type NextFunction = (err?: unknown) => void;

/** An error passed to `next(err)`: an http-errors-shaped Error. */
export interface HttpError extends Error {
  status: number;
  statusCode: number;
  /** Whether the message may be shown to the client (status < 500). */
  expose: boolean;
}

/**
 * A Connect/Express middleware serving the files under `root`, zero-copy,
 * as serve-static does (same options and defaults; see
 * {@link ServeStaticOptions} and {@link ServeFileOptions}): `app.use(serveStatic('public'))`.
 * The request's path is `req.url` (the part below the mount point, as
 * Express sets it); redirects are built from `req.originalUrl`.
 *
 * Requests it answers resolve nothing to `next`; a failure while the body
 * is sent (the client went away) destroys the connection and is not passed
 * on (there is no response left to answer with).
 * @throws TypeError (`ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`) and
 *   RangeError for a bad root or option, when the middleware is made.
 */
export function serveStatic(
  root: string,
  options?: ServeStaticOptions,
): (req: http.IncomingMessage, res: http.ServerResponse, next: NextFunction) => void {
  const s = toStaticPlan(root, options);
  return function serveStaticMiddleware(req, res, next) {
    handle(s, req, res, next).catch((err: unknown) => {
      if (!res.headersSent) next(err);
      else if (!res.destroyed) res.destroy(err as Error);
    });
  };
}

/** serveStatic's options, validated once. @internal (also used by pagewarm/fastify) */
export interface StaticPlan {
  plan: ServePlan;
  fallthrough: boolean;
  redirect: boolean;
  index: string[];
  extensions: string[];
}

/**
 * Validates serveStatic's root and options.
 * @throws TypeError / RangeError naming the argument. @internal
 */
export function toStaticPlan(root: unknown, options: unknown, name = 'options'): StaticPlan {
  if (typeof root !== 'string') throw invalidArgType('root', 'of type string', root);
  if (root === '') throw invalidArgValue('root', root, 'must be a directory path');
  const opts = toOptions<ServeStaticOptions>(options, name);
  return {
    plan: toServePlan({ ...opts, root }, name),
    fallthrough: toBoolean(opts.fallthrough, `${name}.fallthrough`, true),
    redirect: toBoolean(opts.redirect, `${name}.redirect`, true),
    index: toNames(opts.index, `${name}.index`, ['index.html'], (n) => n),
    extensions: toNames(opts.extensions, `${name}.extensions`, [], (e) => (e.startsWith('.') ? e.slice(1) : e)),
  };
}

/** One request through the middleware: an answer, or a miss for next(). */
async function handle(s: StaticPlan, req: http.IncomingMessage, res: http.ServerResponse, next: NextFunction): Promise<void> {
  checkRequest(req);
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    if (s.fallthrough) return next();
    res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
    return endResponse(res, Buffer.alloc(0));
  }
  let path = pathOf(req.url ?? '/');
  // The mount point itself, asked for without its slash: the root
  // directory's redirect (or the root file itself, when root is a file).
  if (path === '/' && !pathOf(originalUrl(req)).endsWith('/')) path = '';
  const status = await answerStatic(s, req, res, path, originalUrl(req));
  if (status !== undefined) miss(s, next, status);
}

/**
 * Answers a GET or HEAD for `path` (a URL path below the mount point, ''
 * for the mount point itself) as serve-static does: a file, an index file
 * for a path ending in `/`, a file with one of the fallback extensions, or
 * a redirect for a directory without its slash (Location from
 * `originalUrl`). Nothing is written for a miss; `beforeAnswer` is called
 * before anything is written.
 * @returns undefined when answered, else the status of the miss (400, 403, 404, 500).
 * @internal (also used by pagewarm/fastify)
 */
export async function answerStatic(
  s: StaticPlan,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  path: string,
  originalUrl: string,
  beforeAnswer?: () => void,
): Promise<number | undefined> {
  const ch = activeChannel('serveFile');
  if (ch === undefined) return missStatus(await answerOnce(s, req, res, path, originalUrl, beforeAnswer, undefined));
  // Traced as serveFile is: the result is what was sent, or for a request
  // handed on (next(), Fastify's not-found handler) its status with `handedOn`.
  const r = await traceAsync(ch, { path: originalUrl, method: req.method }, async (meter) => {
    const answer = await answerOnce(s, req, res, path, originalUrl, beforeAnswer, meter);
    return isMiss(answer) ? { statusCode: answer.status, bytes: 0, zeroCopy: false, handedOn: true } : answer;
  });
  return 'handedOn' in r ? r.statusCode : undefined;
}

function missStatus(r: ServeFileResult | Miss): number | undefined {
  return isMiss(r) ? r.status : undefined;
}

/** answerStatic's work: what was sent, or the Miss to hand on. */
async function answerOnce(
  s: StaticPlan,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  path: string,
  originalUrl: string,
  beforeAnswer: (() => void) | undefined,
  meter: Meter | undefined,
): Promise<ServeFileResult | Miss> {
  const miss = (status: number): Miss => ({ miss: true, status, directory: false });
  const target = resolveTarget(path, s.plan.root);
  if (typeof target === 'number') return miss(target);
  const cache = cacheFor(s.plan.cacheOption);
  const serve = (t: string) => serveTarget(req, res, t, s.plan, cache, beforeAnswer, meter);

  if (path.endsWith('/')) {
    for (const name of s.index) {
      const r = await serve(target + name);
      if (!isMiss(r) || r.status !== 404) return r;
    }
    return miss(404);
  }
  const r = await serve(target);
  if (isMiss(r) && r.directory) {
    if (!s.redirect) return miss(404);
    beforeAnswer?.();
    await redirect(res, originalUrl);
    return { statusCode: 301, bytes: 0, zeroCopy: false };
  }
  if (isMiss(r) && r.status === 404 && s.extensions.length > 0 && !/\.[^/]*$/.test(path)) {
    for (const ext of s.extensions) {
      const e = await serve(`${target}.${ext}`);
      if (!isMiss(e) || e.status !== 404) return e;
    }
  }
  return r;
}

function isMiss(r: ServeFileResult | Miss): r is Miss {
  return 'miss' in r;
}


/** A request not answered here: next() when falling through (any status below 500), else next(err). */
function miss(s: StaticPlan, next: NextFunction, status: number): void {
  if (s.fallthrough && status < 500) return next();
  const err = new Error(http.STATUS_CODES[status] ?? 'Error') as HttpError;
  err.status = err.statusCode = status;
  err.expose = status < 500;
  next(err);
}

/** The 301 to a directory's path with a trailing slash, as serve-static sends it. */
async function redirect(res: http.ServerResponse, original: string): Promise<void> {
  const q = original.search(/[?#]/);
  const pathname = q < 0 ? pathOf(original) : pathOf(original.slice(0, q));
  const search = q < 0 ? '' : original.slice(q).replace(/#.*$/, '');
  const location = encodeUrl(`${pathname}/`.replace(/^\/+/, '/') + search);
  const body = Buffer.from(
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Redirecting</title>\n</head>\n' +
    `<body>\n<pre>Redirecting to ${escapeHtml(location)}</pre>\n</body>\n</html>\n`,
  );
  res.writeHead(301, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': body.length,
    'content-security-policy': "default-src 'none'",
    'x-content-type-options': 'nosniff',
    location,
  });
  await endResponse(res, body);
}

/** The request target's path (no query), origin-form or absolute-form; '' for a target that has none. */
export function pathOf(url: string): string {
  let u = url;
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/.exec(u);
  if (m) u = u.slice(m[0].length) || '/';
  const cut = u.search(/[?#]/);
  return cut < 0 ? u : u.slice(0, cut);
}

function originalUrl(req: http.IncomingMessage): string {
  const o = (req as { originalUrl?: unknown }).originalUrl;
  return typeof o === 'string' ? o : (req.url ?? '/');
}

/**
 * Percent-encodes what may not appear in a URL, leaving valid `%XX`
 * escapes as they are (as the encodeurl package does).
 */
function encodeUrl(url: string): string {
  return url
    .replace(/(?:[^\x21\x23-\x3B\x3D\x3F-\x5F\x61-\x7A\x7C\x7E]|%(?:[^0-9A-Fa-f]|[0-9A-Fa-f][^0-9A-Fa-f]|$))+/g, (s) =>
      encodeURI(s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(^|[^\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '$1\uFFFD')));
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A string / string[] / false option as a list of non-empty names without `/`. */
function toNames(value: unknown, name: string, fallback: string[], map: (n: string) => string): string[] {
  if (value === undefined) return fallback;
  if (value === false) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list)) throw invalidArgType(name, 'of type string, string[] or false', value);
  return list.map((n: unknown) => {
    if (typeof n !== 'string' || n === '' || n.includes('/') || n.includes('\0')) {
      throw invalidArgValue(name, value, 'must hold non-empty file names without "/"');
    }
    return map(n);
  });
}
