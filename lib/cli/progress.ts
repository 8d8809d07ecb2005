/**
 * The progress bar `pagewarm warm` draws on stderr when it is a terminal.
 */
import type { CliStreams } from './args';
import { formatBytes, formatDuration } from './report';

/** The progress bar on stderr: bytes, rate and ETA, redrawn at most 10 times a second. */
export class Progress {
  private timer: NodeJS.Timeout | undefined;
  private readonly started = performance.now();
  private finishedBytes = 0;
  private runningBytes = 0;
  /** Bytes the whole warm-up covers (set before start()). */
  total = 0;
  filesDone = 0;

  /** @param files The number of files to warm, shown as "n/files files". */
  constructor(
    private readonly stream: CliStreams['stderr'],
    private readonly files: number,
  ) {}

  /** Draws the bar and redraws it every 100 ms (the timer does not hold the process open). */
  start(): void {
    this.draw();
    this.timer = setInterval(() => this.draw(), 100);
    this.timer.unref();
  }

  /** Counts a finished file and its warmed bytes. */
  fileDone(bytes: number): void {
    this.finishedBytes += bytes;
    this.filesDone++;
  }

  /**
   * How far the batches still running have got (the batch path's progress
   * watch, chunk by chunk): bytes not yet counted by fileDone().
   */
  running(bytes: number): void {
    this.runningBytes = bytes;
  }

  /** Draws the final state, then clears the line for the summary. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.draw();
    this.stream.write('\r\x1b[K');
  }

  private done(): number {
    return Math.min(this.total, this.finishedBytes + this.runningBytes);
  }

  private draw(): void {
    const done = this.done();
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    const fraction = this.total > 0 ? done / this.total : 1;
    const width = Math.max(10, Math.min(30, (this.stream.columns ?? 80) - 60));
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const line =
      `${bar} ${formatBytes(done)}/${formatBytes(this.total)}  ${formatBytes(rate)}/s  ` +
      `ETA ${formatDuration(eta)}  ${this.filesDone}/${this.files} files`;
    this.stream.write(`\r${line}\x1b[K`);
  }
}
