#!/usr/bin/env node
// Makes the N-API prebuilds that `npm pack` ships:
//
//   prebuilds/linux-x64/pagewarm.napi.glibc.node
//   prebuilds/linux-arm64/pagewarm.napi.glibc.node   (cross-compiled)
//
// with prebuildify (--napi --strip --tag-libc). node-gyp-build picks the one
// matching the user's platform, CPU and libc at load time.
//
// Each architecture is built in its own scratch copy under the system temp
// dir (binding.gyp, src/, package.json and a node_modules link), so the
// `build/` of the working tree is never touched: other work in this tree
// keeps its local build, and two prebuild runs never share a build dir.
//
// The arm64 build needs Debian's g++-aarch64-linux-gnu. When it is missing
// and this runs as root with apt-get, the script installs it; otherwise it
// stops and says what to install.
//
// Usage: node scripts/prebuild.js [--arch x64,arm64]
//   env PAGEWARM_PREBUILD_ARCHS=x64,arm64   the same, for npm scripts
//   env PAGEWARM_PREBUILD_NO_APT=1           never call apt-get
//   env PAGEWARM_PREBUILD_CACHE=DIR          where finished binaries are kept,
//       keyed by a hash of every input (sources, build scripts, compiler,
//       node-addon-api, node-gyp, node headers); 0 turns the cache off.
//       Default: pagewarm-prebuild-cache in the system temp dir.
//
// musl (Alpine) is not built: Debian has no musl C++ toolchain, and a binary
// that was never loaded on musl is not one to ship. On musl, node-gyp-build
// finds no matching prebuild, builds from source if it can, and otherwise
// pagewarm runs on its portable fallback.
'use strict';

const { execFileSync, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');

/** How to build for each target CPU from this host. */
function toolchain(arch) {
  const host = os.arch();
  if (arch === host) return { prefix: '', debianPackages: [] };
  if (host === 'x64' && arch === 'arm64') {
    return { prefix: 'aarch64-linux-gnu-', debianPackages: ['g++-aarch64-linux-gnu'] };
  }
  if (host === 'arm64' && arch === 'x64') {
    return { prefix: 'x86_64-linux-gnu-', debianPackages: ['g++-x86-64-linux-gnu'] };
  }
  throw new Error(`pagewarm prebuild: no known toolchain for ${arch} on a ${host} host`);
}

function have(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function ensureToolchain(arch) {
  const tc = toolchain(arch);
  const missing = ['gcc', 'g++', 'strip'].filter((tool) => !have(tc.prefix + tool));
  if (missing.length === 0) return tc;
  const packages = tc.debianPackages.length > 0 ? tc.debianPackages : ['g++', 'make'];
  const canApt = process.getuid?.() === 0 && have('apt-get') && process.env.PAGEWARM_PREBUILD_NO_APT !== '1';
  if (!canApt) {
    throw new Error(
      `pagewarm prebuild: ${missing.map((t) => tc.prefix + t).join(', ')} not found; ` +
        `install them (Debian/Ubuntu: apt-get install -y ${packages.join(' ')})`,
    );
  }
  console.error(`pagewarm prebuild: installing ${packages.join(' ')} for the ${arch} build`);
  const apt = (args) => execFileSync('apt-get', args, { stdio: ['ignore', process.stderr, process.stderr], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  try {
    apt(['install', '-y', '--no-install-recommends', ...packages]);
  } catch {
    apt(['update']);
    apt(['install', '-y', '--no-install-recommends', ...packages]);
  }
  return tc;
}

/** The headers of the running node, when they are installed next to it. */
function localNodedir() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

function run(command, args) {
  execFileSync(command, args, { stdio: ['ignore', process.stderr, process.stderr] });
}

function copyTree(from, to) {
  fs.cpSync(from, to, { recursive: true });
}

/** A hash of everything the binary for `arch` is made from. */
function inputsKey(arch, tc) {
  const hash = crypto.createHash('sha256');
  const add = (label, data) => hash.update(`${label}\0${data.length}\0`).update(data);
  add('arch', arch);
  add('node', process.versions.node);
  for (const f of ['binding.gyp', ...fs.readdirSync(path.join(root, 'src')).sort().map((n) => `src/${n}`)]) {
    add(f, fs.readFileSync(path.join(root, f)));
  }
  for (const f of ['prebuild.js', 'prebuild-compat.c', 'prebuild-exports.map']) add(f, fs.readFileSync(path.join(__dirname, f)));
  for (const dep of ['node-addon-api', 'node-gyp', 'prebuildify']) add(dep, require(`${dep}/package.json`).version);
  for (const tool of ['gcc', 'g++']) add(tool, execFileSync(`${tc.prefix}${tool}`, ['--version'], { encoding: 'utf8' }));
  for (const flags of ['CFLAGS', 'CXXFLAGS', 'CPPFLAGS', 'LDFLAGS']) add(flags, process.env[flags] ?? '');
  return hash.digest('hex').slice(0, 32);
}

function cacheDir() {
  const dir = process.env.PAGEWARM_PREBUILD_CACHE;
  if (dir === '0') return undefined;
  return dir || path.join(os.tmpdir(), 'pagewarm-prebuild-cache');
}

/** Installs `file` as the prebuild for `arch` in prebuilds/; returns its path. */
function install(arch, file) {
  const dest = path.join(root, 'prebuilds', `${process.platform}-${arch}`);
  fs.rmSync(dest, { recursive: true, force: true });
  fs.mkdirSync(dest, { recursive: true });
  const out = path.join(dest, path.basename(file));
  fs.copyFileSync(file, out);
  fs.chmodSync(out, 0o755);
  return out;
}

/** The binary for one architecture, from the cache or built; returns its path in prebuilds/. */
function buildArch(arch) {
  const tc = ensureToolchain(arch);
  const cache = cacheDir();
  const cached = cache && path.join(cache, inputsKey(arch, tc));
  if (cached && fs.existsSync(cached)) {
    const files = fs.readdirSync(cached).filter((f) => f.endsWith('.node'));
    if (files.length === 1) {
      console.error(`pagewarm prebuild: linux-${arch} from the cache (${cached})`);
      return install(arch, path.join(cached, files[0]));
    }
  }
  const built = compile(arch, tc);
  if (cached) {
    const tmp = `${cached}.${process.pid}`;
    fs.mkdirSync(tmp, { recursive: true });
    fs.copyFileSync(built, path.join(tmp, path.basename(built)));
    try {
      fs.renameSync(tmp, cached); // atomic: concurrent runs never see half an entry
    } catch {
      fs.rmSync(tmp, { recursive: true, force: true }); // another run got there first
    }
  }
  return built;
}

/** Builds one architecture in a scratch copy; returns the stripped binary's path in prebuilds/. */
function compile(arch, tc) {
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `pagewarm-prebuild-${arch}-`));
  try {
    for (const entry of ['binding.gyp', 'package.json', 'src']) copyTree(path.join(root, entry), path.join(scratch, entry));
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(scratch, 'node_modules'), 'dir');

    const env = { ...process.env, JOBS: process.env.JOBS || 'max' };
    // Link libstdc++ in, hidden: the GCC 12 libstdc++ this is built with
    // has symbol versions (GLIBCXX_3.4.30) that older distributions' lacks
    // (RHEL 9, Amazon Linux 2023), so a dynamic link would not load there.
    // libgcc_s stays shared (one unwinder per process). Only the N-API entry
    // points are exported. See prebuild-compat.c for the arc4random shim.
    const compat = path.join(scratch, 'prebuild-compat.o');
    run(`${tc.prefix}gcc`, ['-O2', '-fPIC', '-fvisibility=hidden', '-c', path.join(__dirname, 'prebuild-compat.c'), '-o', compat]);
    env.LDFLAGS = [
      env.LDFLAGS ?? '',
      compat,
      '-static-libstdc++',
      '-Wl,--exclude-libs,ALL',
      `-Wl,--version-script=${path.join(__dirname, 'prebuild-exports.map')}`,
    ].join(' ').trim();
    if (!env.npm_config_nodedir && localNodedir()) env.npm_config_nodedir = localNodedir();
    if (tc.prefix) {
      Object.assign(env, {
        CC: `${tc.prefix}gcc`,
        CXX: `${tc.prefix}g++`,
        LINK: `${tc.prefix}g++`,
        AR: `${tc.prefix}ar`,
      });
    }
    const args = [
      require.resolve('prebuildify/bin.js'),
      '--napi',
      '--strip',
      '--tag-libc',
      `--arch=${arch}`,
      `--strip-bin=${tc.prefix}strip`,
      // N-API: the version only chooses the headers; use the running node's.
      `--target=${process.versions.node}`,
      `--cwd=${scratch}`,
      `--out=${scratch}`,
    ];
    console.error(`pagewarm prebuild: building linux-${arch}${tc.prefix ? ` with ${tc.prefix}g++` : ''}`);
    const result = spawnSync(process.execPath, args, { cwd: scratch, env, encoding: 'utf8', maxBuffer: 64 << 20 });
    if (result.status !== 0) {
      process.stderr.write(result.stdout + result.stderr); // node-gyp's log, only when it failed
      throw new Error(`pagewarm prebuild: prebuildify failed for ${arch} (exit ${result.status})`);
    }

    const dir = path.join(scratch, 'prebuilds', `${process.platform}-${arch}`);
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.node'));
    if (files.length !== 1) throw new Error(`pagewarm prebuild: expected one .node in ${dir}, found ${files.join(', ')}`);
    return install(arch, path.join(dir, files[0]));
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

const ELF_MACHINE = { x64: 'x86-64', arm64: 'ARM aarch64' };
/** The newest glibc a prebuild may need (Ubuntu 22.04: 2.35, RHEL 9 and Amazon Linux 2023: 2.34). */
const MAX_GLIBC = [2, 34];

/** Checks what was built: the right ELF machine, stripped; loads it when it can run here. */
function verify(arch, file) {
  const described = execFileSync('file', ['-b', file], { encoding: 'utf8' }).trim();
  if (!described.includes(ELF_MACHINE[arch]) || !described.includes('stripped') || described.includes('not stripped')) {
    throw new Error(`pagewarm prebuild: ${file} is not a stripped ${ELF_MACHINE[arch]} ELF: ${described}`);
  }
  // What the binary needs from the system: glibc symbol versions up to
  // MAX_GLIBC, no libstdc++ at all, and it exports only the N-API entry points.
  const dynamic = execFileSync(`${toolchain(arch).prefix}objdump`, ['-T', file], { encoding: 'utf8' });
  const glibc = [...dynamic.matchAll(/\(GLIBC_(\d+)\.(\d+)(?:\.\d+)?\)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  const newest = glibc.reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a), [0, 0]);
  if (newest[0] > MAX_GLIBC[0] || (newest[0] === MAX_GLIBC[0] && newest[1] > MAX_GLIBC[1])) {
    throw new Error(`pagewarm prebuild: ${file} needs glibc ${newest.join('.')}, more than ${MAX_GLIBC.join('.')}`);
  }
  if (/GLIBCXX_|CXXABI_/.test(dynamic)) throw new Error(`pagewarm prebuild: ${file} depends on the system libstdc++`);
  const exported = dynamic.split('\n').filter((l) => / DF \.text/.test(l)).map((l) => l.trim().split(/\s+/).pop());
  if (exported.some((name) => !/^(napi_register_module_v1|node_api_module_get_api_version_v1)$/.test(name))) {
    throw new Error(`pagewarm prebuild: ${file} exports more than the N-API entry points: ${exported.join(', ')}`);
  }
  if (arch === os.arch()) {
    const probe = `const b = require(${JSON.stringify(file)}); if (typeof b.warm !== 'function') process.exit(3);`;
    const r = spawnSync(process.execPath, ['-e', probe], { stdio: ['ignore', process.stderr, process.stderr] });
    if (r.status !== 0) throw new Error(`pagewarm prebuild: ${file} does not load in this node`);
  }
  const size = fs.statSync(file).size;
  console.error(
    `pagewarm prebuild: ${path.relative(root, file)} ${size} bytes, needs glibc >= ${newest.join('.')}: ${described}`,
  );
}

function archs() {
  const i = process.argv.indexOf('--arch');
  const list = i >= 0 ? process.argv[i + 1] : process.env.PAGEWARM_PREBUILD_ARCHS;
  if (list) return list.split(',').map((a) => a.trim()).filter(Boolean);
  return os.arch() === 'x64' || os.arch() === 'arm64' ? ['x64', 'arm64'] : [os.arch()];
}

function main() {
  if (process.platform !== 'linux') {
    console.error(`pagewarm prebuild: prebuilds are made on Linux; nothing to do on ${process.platform}`);
    return;
  }
  for (const arch of archs()) verify(arch, buildArch(arch));
}

try {
  main();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
