/**
 * `pagewarm/fastify`: static files for Fastify v5, zero-copy, with
 * serveStatic's options (and so serve-static's), in place of
 * @fastify/static:
 *
 *   fastify.register(pagewarmStatic, { root: '/srv/www', prefix: '/static/' });
 *   // and in a handler: return reply.sendFile('report.pdf');
 *
 * Zero-copy means writing to the socket: once a file (or a redirect) is
 * found, the reply is hijacked and answered on `reply.raw`. Fastify still
 * runs onRequest / preHandler hooks before, logs the request with its
 * status, and runs onResponse hooks after (they hang on the raw response's
 * 'finish'). What cannot apply: onSend hooks and payload transforms
 * (@fastify/compress: use `precompressed` files instead). Headers set with
 * `reply.header()` before are sent. fastify is not imported at run time.
 */
import * as http from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { invalidArgType, invalidArgValue } from '../core/errors';
import { toOptions } from '../core/validate';
import { answerStatic, pathOf, toStaticPlan, type ServeStaticOptions, type StaticPlan } from '../http/static';

/** Options of the plugin: serveStatic's, plus where to serve. */
export interface PagewarmStaticOptions extends ServeStaticOptions {
  /** The directory to serve (required). */
  root: string;
  /** The URL prefix served, `'/'` by default; `'/static'` and `'/static/'` are the same. */
  prefix?: string;
  /** Decorate `reply.sendFile(path, [rootOrOptions])`. Default true; false when another plugin does (e.g. @fastify/static). */
  decorateReply?: boolean;
}

/** What `reply.sendFile`'s second argument may also be: options for this call (over the plugin's). */
export type SendFileCallOptions = ServeStaticOptions & { root?: string };

declare module 'fastify' {
  interface FastifyReply {
    /**
     * Answers with the file at `path` (below the plugin's root, or the root
     * given here), zero-copy: ranges, validators, precompressed variants and
     * confinement as serveStatic. A missing file goes to the not-found
     * handler. Returns the reply (await it, or return it from the handler).
     */
    sendFile(path: string, rootOrOptions?: string | SendFileCallOptions): FastifyReply;
  }
}

/** The plugin function, as Fastify calls it. */
export type PagewarmStaticPlugin = ((
  fastify: FastifyInstance,
  options: PagewarmStaticOptions,
  done: (err?: Error) => void,
) => void) & { [key: symbol]: unknown };

/**
 * Serves `options.root` under `options.prefix` (GET and HEAD routes
 * `prefix*`), as serveStatic does; misses go to Fastify's not-found
 * handler (404) or error handler (400, 403, 500). Bad options fail the
 * registration (TypeError / RangeError naming the option).
 */
export const pagewarmStatic = function pagewarmStatic(
  fastify: FastifyInstance,
  options: PagewarmStaticOptions,
  done: (err?: Error) => void,
): void {
  let s: StaticPlan;
  let prefix: string;
  let decorate: boolean;
  try {
    const opts = toOptions<PagewarmStaticOptions>(options);
    const { prefix: p = '/', decorateReply = true, root, ...rest } = opts;
    if (typeof p !== 'string' || !p.startsWith('/')) throw invalidArgValue('options.prefix', p, "must be a string starting with '/'");
    if (typeof decorateReply !== 'boolean') throw invalidArgType('options.decorateReply', 'of type boolean', decorateReply);
    s = toStaticPlan(root, rest);
    prefix = p.endsWith('/') ? p : `${p}/`;
    decorate = decorateReply;
  } catch (err) {
    done(err as Error);
    return;
  }

  if (decorate && fastify.hasReplyDecorator('sendFile')) {
    done(invalidArgValue('options.decorateReply', true,
      'cannot decorate reply.sendFile twice (another pagewarm/fastify or @fastify/static registered it): pass decorateReply: false'));
    return;
  }
  if (decorate) {
    fastify.decorateReply('sendFile', function sendFile(this: FastifyReply, path: string, rootOrOptions?: string | SendFileCallOptions) {
      const reply = this;
      let plan = s;
      try {
        if (typeof path !== 'string') throw invalidArgType('path', 'of type string', path);
        if (typeof rootOrOptions === 'string') plan = toStaticPlan(rootOrOptions, { ...optionsOf(options), redirect: false });
        else if (rootOrOptions !== undefined) {
          const o = toOptions<SendFileCallOptions>(rootOrOptions, 'rootOrOptions');
          plan = toStaticPlan(o.root ?? options.root, { ...optionsOf(options), redirect: false, ...o }, 'rootOrOptions');
        } else plan = { ...s, redirect: false };
      } catch (err) {
        reply.send(err);
        return reply;
      }
      const p = path.startsWith('/') ? path : `/${path}`;
      answer(plan, reply.request, reply, p, reply.request.raw.url ?? p);
      return reply;
    });
  }

  const handler = (request: FastifyRequest, reply: FastifyReply): void => {
    const url = request.raw.url ?? '/';
    const pathname = pathOf(url);
    // Below the prefix: '/static/a/b' → '/a/b'; the prefix without its slash → '' (redirected).
    const path = pathname.length < prefix.length ? '' : `/${pathname.slice(prefix.length)}`;
    answer(s, request, reply, path, url);
  };
  fastify.route({ method: ['GET', 'HEAD'], url: `${prefix}*`, handler });
  if (prefix !== '/') fastify.route({ method: ['GET', 'HEAD'], url: prefix.slice(0, -1), handler });
  done();
} as PagewarmStaticPlugin;

// Registered in the caller's scope (so reply.sendFile is visible there), as fastify-plugin does.
pagewarmStatic[Symbol.for('skip-override')] = true;
pagewarmStatic[Symbol.for('fastify.display-name')] = 'pagewarm-static';
pagewarmStatic[Symbol.for('plugin-meta')] = { name: 'pagewarm-static', fastify: '5.x' };

export default pagewarmStatic;

/** The plugin's own options, without where to serve. */
function optionsOf(options: PagewarmStaticOptions): ServeStaticOptions {
  const { prefix: _p, decorateReply: _d, root: _r, ...rest } = options;
  return rest;
}

/**
 * Answers through answerStatic: the reply is hijacked (and the headers set
 * with reply.header() copied to the raw response) just before anything is
 * written. A miss goes back to Fastify: 404 to the not-found handler,
 * others to the error handler with `statusCode`.
 */
function answer(s: StaticPlan, request: FastifyRequest, reply: FastifyReply, path: string, originalUrl: string): void {
  const res = reply.raw as http.ServerResponse;
  let taken = false;
  const take = (): void => {
    if (taken) return;
    taken = true;
    reply.hijack();
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined && !res.hasHeader(name)) res.setHeader(name, value as string | number | string[]);
    }
  };
  answerStatic(s, request.raw, res, path, originalUrl, take).then(
    (status) => {
      if (status === undefined) return;
      if (status === 404) return void reply.callNotFound();
      const err = Object.assign(new Error(http.STATUS_CODES[status] ?? 'Error'), { statusCode: status });
      reply.send(err);
    },
    (err: unknown) => {
      if (!taken) reply.send(err as Error);
      else if (!res.destroyed) res.destroy(err as Error);
    },
  );
}
