/**
 * Tracing through `node:diagnostics_channel`: one TracingChannel per
 * operation, as undici and node:http publish theirs, for APM agents
 * (OpenTelemetry and others) and for a service's own metrics. See
 * docs/api.md, "Tracing", for the channels and their context objects.
 *
 * Without subscribers an operation costs one property read
 * (`hasSubscribers`) more than untraced: nothing is allocated, and the
 * native jobs are not asked for their figures.
 */
import * as dc from 'node:diagnostics_channel';
import type { Meter } from './settle';

/** The channel names, by operation. */
export const CHANNELS = {
  prepareForRead: 'pagewarm:prepareForRead',
  residency: 'pagewarm:residency',
  sendFile: 'pagewarm:sendFile',
  transferTo: 'pagewarm:transferTo',
  serveFile: 'pagewarm:serveFile',
  warmFiles: 'pagewarm:warmFiles',
  restore: 'pagewarm:restore',
} as const;

/** An operation that publishes on a tracing channel. */
export type TracedOperation = keyof typeof CHANNELS;

/**
 * The context object of every pagewarm channel. At `start`: what the call
 * was given. At `asyncEnd` (`end` for sync calls): `result`, and for the
 * operations that read or wait, `fromDisk`, `queuedMs` and `durationMs`. On
 * failure `error` is set (published on `error`, then asyncStart/asyncEnd).
 */
export interface TraceContext {
  /** The descriptor the call was given (prepareForRead, residency, sendFile, transferTo: the source file). */
  fd?: number;
  /** The path it was given (sendFile, serveFile: the request path; restore: the hot-set file). */
  path?: string;
  /** warmFiles: the paths, when given as an array (not an iterable). */
  paths?: readonly string[];
  /** Byte offset asked for (undefined: the default). */
  offset?: number;
  /** Bytes asked for (undefined: to the end of the file). */
  length?: number;
  /** transferTo: the destination descriptor. */
  outFd?: number;
  /** serveFile: the request method. */
  method?: string;
  /** What the call resolved with (returned, for sync calls). */
  result?: unknown;
  /** What it rejected with (threw). */
  error?: unknown;
  /** Bytes that were not in the page cache when pagewarm read them: disk waits the event loop was spared. */
  fromDisk?: number;
  /** Milliseconds the call's jobs waited for one of pagewarm's threads, summed. */
  queuedMs?: number;
  /** Milliseconds from the call to its settlement. */
  durationMs?: number;
}

type Channel = dc.TracingChannel<unknown, TraceContext>;

const channels = Object.fromEntries(
  Object.entries(CHANNELS).map(([op, name]) => [op, dc.tracingChannel<unknown, TraceContext>(name)]),
) as Record<TracedOperation, Channel>;

/** The operation's channel when something subscribes to it, else undefined (then trace nothing). */
export function activeChannel(op: TracedOperation): Channel | undefined {
  const ch = channels[op];
  return ch.hasSubscribers ? ch : undefined;
}

/**
 * Runs `run` on `ch`: start, end, then (error,) asyncStart and asyncEnd,
 * with `fromDisk`, `queuedMs` (what `run` adds to the meter it is given)
 * and `durationMs` set before the settlement is published.
 */
export function traceAsync<T>(ch: Channel, context: TraceContext, run: (meter: Meter) => Promise<T>): Promise<T> {
  const meter: Meter = { fromDisk: 0, queuedMs: 0 };
  const began = performance.now();
  return ch.tracePromise(async () => {
    try {
      return await run(meter);
    } finally {
      finish(context, meter, began);
    }
  }, context);
}

/** traceAsync for a synchronous call: start, then (error,) end. */
export function traceSync<T>(ch: Channel, context: TraceContext, run: (meter: Meter) => T): T {
  const meter: Meter = { fromDisk: 0, queuedMs: 0 };
  const began = performance.now();
  return ch.traceSync(() => {
    try {
      return run(meter);
    } finally {
      finish(context, meter, began);
    }
  }, context);
}

function finish(context: TraceContext, meter: Meter, began: number): void {
  context.fromDisk = meter.fromDisk;
  context.queuedMs = meter.queuedMs;
  context.durationMs = performance.now() - began;
}
