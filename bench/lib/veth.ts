/**
 * A second network for the send benchmark: a veth pair whose far end lives
 * in a network namespace of its own, so the receiver is another "host" on a
 * 1500-byte-MTU link rather than a process on loopback. Loopback hands the
 * sender's 64 KiB segments straight to the receiver on the sender's CPU; a
 * veth link segments and reassembles like a NIC does (GSO on the way out,
 * GRO on the way in), which is closer to what a file server's sends cross.
 *
 * Needs root and iproute2's `ip`. `VethPair.create()` returns the reason as a
 * string when it cannot, and benchmarks print which networks they ran on.
 * The pair and the namespace are removed again at exit, and ones left by a
 * benchmark process that is gone are removed on the next create.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { atExit } from './common';

const PREFIX = 'pwbench';
const live = new Set<VethPair>();

function ip(args: string[]): string | null {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.error) return r.error.message;
  return r.status === 0 ? null : (r.stderr || `ip ${args.join(' ')} exited ${r.status}`).trim();
}

/** One veth pair: `hostAddress` here, `peerAddress` inside namespace `netns`. */
export class VethPair {
  readonly netns: string;
  readonly hostAddress: string;
  readonly peerAddress: string;
  private readonly link: string;

  private constructor(netns: string, link: string, subnet: number) {
    this.netns = netns;
    this.link = link;
    this.hostAddress = `10.231.${subnet}.1`;
    this.peerAddress = `10.231.${subnet}.2`;
  }

  /** Creates the namespace and the pair, or returns why it cannot. */
  static create(): VethPair | string {
    if (process.getuid?.() !== 0) return 'not root: network namespaces need root';
    const missing = ip(['-V']);
    if (missing) return `no iproute2 'ip' command: ${missing}`;
    removeStale();
    const id = `${process.pid}${live.size ? `x${live.size}` : ''}`;
    const pair = new VethPair(`${PREFIX}-${id}`, `pwb${id}`, (process.pid + live.size) % 250 + 1); // link names: at most 15 bytes
    live.add(pair);
    const steps: string[][] = [
      ['netns', 'add', pair.netns],
      ['link', 'add', `${pair.link}a`, 'type', 'veth', 'peer', 'name', `${pair.link}b`, 'netns', pair.netns],
      ['addr', 'add', `${pair.hostAddress}/30`, 'dev', `${pair.link}a`],
      ['link', 'set', `${pair.link}a`, 'up'],
      ['-n', pair.netns, 'addr', 'add', `${pair.peerAddress}/30`, 'dev', `${pair.link}b`],
      ['-n', pair.netns, 'link', 'set', `${pair.link}b`, 'up'],
      ['-n', pair.netns, 'link', 'set', 'lo', 'up'],
    ];
    for (const step of steps) {
      const err = ip(step);
      if (err) {
        pair.destroy();
        return `ip ${step.join(' ')}: ${err}`;
      }
    }
    return pair;
  }

  /** The command and arguments that run `bin args...` inside the namespace. */
  inside(bin: string, args: string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', this.netns, bin, ...args]];
  }

  /** Removes the pair (both ends go with the host end) and the namespace. */
  destroy(): void {
    ip(['link', 'del', `${this.link}a`]);
    ip(['netns', 'del', this.netns]);
    live.delete(this);
  }
}

/** Removes namespaces (and with them their veth ends) of benchmark runs whose process is gone. */
function removeStale(): void {
  const dir = '/run/netns';
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    if (!name.startsWith(`${PREFIX}-`)) continue;
    const pid = Number(name.slice(PREFIX.length + 1).split('x')[0]);
    if (pid === process.pid || existsSync(`/proc/${pid}`)) continue;
    ip(['netns', 'del', name]);
  }
}

function cleanupAll(): void {
  for (const p of [...live]) p.destroy();
}
atExit(cleanupAll);
