// Review fixes of the native layer (issue 13, items 20 and 22): how
// residency is probed and when mincore is believed, descriptor numbers and
// offsets the binding must refuse rather than truncate or overflow, and the
// syscall an error is reported under.
//
// The probing tests run a child under a seccomp filter that answers EPERM to
// cachestat (as a container runtime's default profile answers system calls
// it does not know), built from a small C launcher compiled here, and drop
// capabilities with util-linux setpriv. They are skipped, with the reason,
// where there is no C compiler, no setpriv or not x86_64.
import t from 'tap';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { prepareForRead, capabilities } from '../lib/index';
import { binding } from '../lib/core/native';
import { scratchDir, makeFile, makeCold } from './helpers';

const KiB = 1024;
const dir = scratchDir();
fs.chmodSync(dir, 0o755);
const caps = capabilities();
const dist = join(__dirname, '..', 'dist', 'cjs', 'index.js');

// ---------------------------------------------------------------------------
// A seccomp launcher: runs argv[1..] with cachestat answering EPERM.

const LAUNCHER_C = String.raw`
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char** argv) {
  struct sock_filter filter[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 451, 0, 1),  /* cachestat */
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
  if (argc < 2) return 2;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("prctl"); return 3; }
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) { perror("seccomp"); return 4; }
  execvp(argv[1], argv + 1);
  perror("execvp");
  return 5;
}
`;

function buildLauncher(): { path?: string; why?: string } {
  if (process.arch !== 'x64') return { why: `the filter is written for x86_64 (this is ${process.arch})` };
  const source = join(dir, 'no-cachestat.c');
  const path = join(dir, 'no-cachestat');
  fs.writeFileSync(source, LAUNCHER_C);
  for (const cc of ['cc', 'gcc', 'g++']) {
    const r = spawnSync(cc, cc === 'g++' ? ['-x', 'c', '-O1', '-o', path, source] : ['-O1', '-o', path, source], { encoding: 'utf8' });
    if (r.status === 0) return { path };
  }
  return { why: 'no C compiler (cc, gcc, g++) to build the seccomp launcher' };
}

const launcher = caps.native ? buildLauncher() : { why: 'the portable fallback has no cachestat or mincore to probe' };
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;

/**
 * Runs `code` in a child node (the compiled package as `pw`, its binding as
 * `binding`) under the launcher, optionally through setpriv, with `fds`
 * passed as descriptors 3, 4, ... Returns what the child printed as JSON.
 */
function runChild(t: { fail(message: string): unknown }, code: string, fds: number[], setpriv: string[] = []): unknown {
  const script = `const pw = require(${JSON.stringify(dist)}); const { binding } = require(${JSON.stringify(join(dist, '..', 'core', 'native.js'))});\n` +
    `(async () => { ${code} })().then((v) => process.stdout.write(JSON.stringify(v)), (e) => { console.error(e); process.exit(1); });`;
  const argv = [...(setpriv.length ? ['setpriv', ...setpriv] : []), launcher.path!, process.execPath, '-e', script];
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe', ...fds], env: { ...process.env, PAGEWARM_FORCE_FALLBACK: '' } });
  if (r.status !== 0) {
    t.fail(`child failed (${r.status}): ${r.stderr}`);
    return undefined;
  }
  return JSON.parse(r.stdout);
}

t.test('cachestat refused by seccomp (EPERM): residency falls back to mincore, not to unknown', { skip: launcher.why }, async (t) => {
  t.ok(fs.existsSync(dist), 'the compiled package exists (npm run build:ts)');
  const path = makeFile(join(dir, 'probe'), 256 * KiB);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  if (!(await makeCold(t, fd))) return;
  const out = runChild(t, `return { caps: binding.capabilities(), cold: pw.residencySync(3), async: await pw.residency(3, 0, 8192) };`, [fd]) as
    | { caps: { cachestat: boolean }; cold: { source: string; residentPages: number | null; pages: number }; async: { source: string; residentPages: number | null } }
    | undefined;
  if (!out) return;
  t.equal(out.caps.cachestat, false, 'cachestat is reported absent: it cannot answer here');
  t.equal(out.cold.source, 'mincore', 'the file (owned by the caller) is described by mincore');
  t.equal(out.cold.residentPages, 0, 'and truthfully: none of the cold file is resident');
  t.equal(out.cold.pages, 64);
  t.match(out.async, { source: 'mincore', residentPages: 0 }, 'residency() on pagewarm threads too');
});

t.test('mincore is believed only when the kernel tells this caller the truth', { skip: launcher.why ?? (!hasSetpriv && 'no setpriv (util-linux) to drop capabilities') }, async (t) => {
  // The child is root without CAP_FOWNER and CAP_DAC_OVERRIDE, as in a
  // rootless container or a hardened service: the kernel's can_do_mincore()
  // then answers truthfully only for files it owns or may write (by the
  // file's mode), and claims every page resident for the others.
  const drop = ['--inh-caps=-fowner,-dac_override', '--bounding-set=-fowner,-dac_override'];
  const make = (name: string, uid: number, mode: number): string => {
    const p = makeFile(join(dir, name), 64 * KiB);
    fs.chownSync(p, uid, uid);
    fs.chmodSync(p, mode);
    return p;
  };
  // Opened here (root with every capability) and handed down as 3, 4, 5, 6.
  const cases = [
    { what: "another user's file, opened read-write, mode now 0444", fd: fs.openSync(make('rw-not-writable', 4321, 0o444), 'r+'), truth: false },
    { what: "another user's file, mode 0644, opened read-only", fd: fs.openSync(make('other-644', 4321, 0o644), 'r'), truth: false },
    { what: "another user's file, mode 0666 (writable by anyone)", fd: fs.openSync(make('other-666', 4321, 0o666), 'r'), truth: true },
    { what: 'its own file, mode 0444', fd: fs.openSync(make('own-444', 0, 0o444), 'r'), truth: true },
  ];
  t.teardown(() => cases.forEach((c) => fs.closeSync(c.fd)));
  for (const c of cases) if (!(await makeCold(t, c.fd))) return;
  const out = runChild(t, `return [3, 4, 5, 6].map((fd) => pw.residencySync(fd));`, cases.map((c) => c.fd), drop) as
    | Array<{ source: string; residentPages: number | null; pages: number }>
    | undefined;
  if (!out) return;
  cases.forEach((c, i) => {
    if (c.truth) {
      t.match(out[i], { source: 'mincore', residentPages: 0, pages: 16 }, `${c.what}: mincore, and the cold file is reported cold`);
    } else {
      t.match(out[i], { source: 'unknown', residentPages: null }, `${c.what}: unknown (mincore would claim all ${out[i]!.pages} pages)`);
    }
  });
});

// ---------------------------------------------------------------------------
// Arguments the binding must refuse, whatever called it.

t.test('descriptor numbers beyond an int are EBADF, never truncated to another descriptor', async (t) => {
  const path = makeFile(join(dir, 'trunc'), 64 * KiB);
  const fd = fs.openSync(path, 'r');
  const out = fs.openSync('/dev/null', 'w');
  t.teardown(() => {
    fs.closeSync(fd);
    fs.closeSync(out);
  });
  const alias = 2 ** 32 + fd; // (int) alias === fd
  const aliasOut = 2 ** 32 + out;
  const buf = Buffer.alloc(4096);
  const calls: Array<[string, () => unknown, string, object?]> = [
    ['residencySync', () => binding.residencySync(alias, 0, -1), caps.cachestat ? 'cachestat' : 'mincore'],
    ['residency', () => binding.residency(alias, 0, -1, 900001), caps.cachestat ? 'cachestat' : 'mincore'],
    ['warmSync', () => binding.warmSync(alias, 0, -1), 'sendfile'],
    ['warm', () => binding.warm(alias, 0, -1, 900002), 'sendfile'],
    ['sendSync (in)', () => binding.sendSync(out, alias, 0, -1), 'sendfile'],
    ['sendSync (out)', () => binding.sendSync(aliasOut, fd, 0, -1), 'sendfile'],
    ['send (in)', () => binding.send(out, alias, 0, -1, 900003), 'sendfile'],
    ['advise', () => binding.advise(alias, 0, 0, 0), 'posix_fadvise'],
    // The fallback never reads on the caller's thread: EAGAIN for any descriptor.
    ['readCached', () => binding.readCached(alias, buf, 0, 4096, 0), 'preadv2', caps.native ? undefined : { errno: 11 }],
  ];
  for (const [name, call, syscall, fallbackAnswer] of calls) {
    let result: unknown;
    try {
      result = call();
      if (result instanceof Promise) result = await result.then((v) => v, (e) => e);
    } catch (err) {
      result = err;
    }
    // The fallback, over node:fs, reports residency under cachestat whatever the kernel has.
    if (fallbackAnswer) t.match(result, fallbackAnswer, `${name}: the fallback's answer for any descriptor`);
    else t.match(result, caps.native ? { errno: 9, syscall } : { errno: 9 }, `${name}: EBADF under ${syscall}`);
  }
  // The fallback asks /proc/self/fd/<number>, which has no such entry: ENOENT, never fd's file.
  t.same(binding.revalidate(path, alias, dir, new Float64Array(5)), { errno: caps.native ? 9 : 2, syscall: 'readlink' }, 'revalidate: refused for the descriptor');
});

t.test('negative offsets are EINVAL at the binding (no INT64_MAX - offset overflow)', { skip: !caps.native && 'the native binding\'s checks (the fallback validates in JS over node:fs)' }, async (t) => {
  const path = makeFile(join(dir, 'negative'), 64 * KiB);
  const fd = fs.openSync(path, 'r');
  const out = fs.openSync('/dev/null', 'w');
  t.teardown(() => {
    fs.closeSync(fd);
    fs.closeSync(out);
  });
  const rs = caps.cachestat ? 'cachestat' : 'mincore';
  t.match(binding.residencySync(fd, -1, -1), { errno: 22, syscall: rs }, 'residencySync');
  t.match(await binding.residency(fd, -4096, -1, 900011), { errno: 22, syscall: rs }, 'residency');
  t.match(binding.warmSync(fd, -1, 10), { errno: 22, syscall: 'sendfile' }, 'warmSync');
  t.match(binding.warm(fd, -1, 10, 900012), { errno: 22, syscall: 'sendfile' }, 'warm');
  t.match(binding.sendSync(out, fd, -1, 10), { errno: 22, syscall: 'sendfile' }, 'sendSync');
  t.match(binding.send(out, fd, -1, 10, 900013), { errno: 22, syscall: 'sendfile' }, 'send');
});

// ---------------------------------------------------------------------------
// Errors are reported under the operation's system call.

t.test("an O_DIRECT descriptor whose file cannot be reopened fails under the operation's syscall", { skip: !caps.native ? 'the fallback reads O_DIRECT descriptors in place (no reopen)' : launcher.why ?? (!hasSetpriv && 'no setpriv (util-linux) to drop capabilities') }, async (t) => {
  // Root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH cannot reopen a mode
  // 0000 file through /proc/self/fd; the descriptor itself was opened here.
  const path = makeFile(join(dir, 'direct-0000'), 64 * KiB);
  fs.chmodSync(path, 0);
  const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
  const out = fs.openSync('/dev/null', 'w');
  t.teardown(() => {
    fs.closeSync(fd);
    fs.closeSync(out);
  });
  const drop = ['--inh-caps=-dac_override,-dac_read_search', '--bounding-set=-dac_override,-dac_read_search'];
  const res = runChild(t, `
    const shape = (e) => ({ code: e.code, syscall: e.syscall });
    return {
      warm: await pw.prepareForRead(3, 0, 4096).then(() => 'resolved', shape),
      warmSync: (() => { try { pw.prepareForReadSync(3, 0, 4096); return 'returned'; } catch (e) { return shape(e); } })(),
      send: binding.sendSync(4, 3, 0, 4096),
    };`, [fd, out], drop) as { warm: unknown; warmSync: unknown; send: unknown } | undefined;
  if (!res) return;
  t.match(res.warm, { code: 'EACCES', syscall: 'sendfile' }, 'prepareForRead: EACCES under transferTo, not open');
  t.match(res.warmSync, { code: 'EACCES', syscall: 'sendfile' }, 'prepareForReadSync: the same');
  t.match(res.send, { errno: 13, syscall: 'sendfile' }, 'send: the same');
});

t.test('prepareForRead of a small resident range still settles on the JS thread', { skip: !caps.fastPath && 'no fast path (needs cachestat)' }, async (t) => {
  // The fast path now also asks the kernel whether the pages are readable
  // without waiting (RWF_NOWAIT); a resident, settled range must still pass.
  const path = makeFile(join(dir, 'hot'), 512 * KiB);
  const fd = fs.openSync(path, 'r');
  t.teardown(() => fs.closeSync(fd));
  await prepareForRead(fd);
  fs.readFileSync(path);
  const r = binding.warm(fd, 0, 512 * KiB, 900021);
  t.equal(r, 512 * KiB, 'settled inline with the whole range');
});
