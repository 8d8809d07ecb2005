/**
 * broker-latency's producer process: sends PRODUCE at a fixed rate on one
 * connection and records each ack's latency (from the send to the ack) in an
 * HDR histogram (us). Sends never wait for earlier acks (open loop), so a
 * stalled broker cannot slow the sender down and hide its stall (no
 * coordinated omission). How late the sender itself was against the schedule
 * is recorded separately, to show the producer was not the bottleneck.
 *
 * Started with fork(); receives its job as an IPC message, replies with the
 * histogram (compressed base64) and exits.
 */
import * as hdr from 'hdr-histogram-js';
import { BrokerClient } from '../../examples/broker/client';

export interface ProducerJob {
  port: number;
  /** Records per second. */
  rate: number;
  recordBytes: number;
  /** Date.now() at which producing starts; recording starts at startAt + warmupMs. */
  startAt: number;
  warmupMs: number;
  durationMs: number;
}

export interface ProducerResult {
  type: 'result';
  histogram: string;
  /** Sender lateness against the schedule, us (HDR, compressed base64). */
  lateness: string;
  sent: number;
  recorded: number;
  maxInFlight: number;
}

async function run(job: ProducerJob): Promise<ProducerResult> {
  const client = await BrokerClient.connect(job.port);
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const late = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const record = Buffer.alloc(job.recordBytes, 0x61);
  const recordFrom = job.startAt + job.warmupMs;
  const end = recordFrom + job.durationMs;
  const total = Math.floor(((end - job.startAt) / 1000) * job.rate);
  const perfOffset = performance.timeOrigin; // Date.now() ~= perfOffset + performance.now()
  let sent = 0;
  let recorded = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const acks: Promise<void>[] = [];
  while (Date.now() < job.startAt) await new Promise((r) => setTimeout(r, Math.max(1, job.startAt - Date.now())));
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = perfOffset + performance.now();
      // Send every record that is due (catching up after a stall).
      while (sent < total && job.startAt + (sent * 1000) / job.rate <= now) {
        const due = job.startAt + (sent * 1000) / job.rate;
        const sentAt = perfOffset + performance.now();
        const inWindow = due >= recordFrom && due < end;
        if (inWindow) late.recordValue(Math.max(1, Math.round((sentAt - due) * 1000)));
        sent++;
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        acks.push(client.produce(record).then(() => {
          inFlight--;
          if (inWindow) {
            h.recordValue(Math.max(1, Math.round((perfOffset + performance.now() - sentAt) * 1000)));
            recorded++;
          }
        }));
      }
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.race([Promise.all(acks), new Promise((r) => setTimeout(r, 30_000))]);
  client.destroy();
  return { type: 'result', histogram: hdr.encodeIntoCompressedBase64(h), lateness: hdr.encodeIntoCompressedBase64(late), sent, recorded, maxInFlight };
}

process.send!({ type: 'ready' });
process.once('message', (job: ProducerJob) => {
  run(job).then((r) => {
    process.send!(r, () => process.exit(0));
  }, (err) => {
    console.error('producer:', err);
    process.exit(1);
  });
});
