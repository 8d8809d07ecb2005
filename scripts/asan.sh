#!/usr/bin/env bash
# npm run test:asan: the addon built with AddressSanitizer and
# UndefinedBehaviorSanitizer, and every test that runs native code run
# against that build.
#
#   scripts/asan.sh                 build (incrementally) and run the tests
#   scripts/asan.sh --build-only    build only
#   scripts/asan.sh --self-test     prove the set-up catches bugs: build a copy
#                                   with a deliberate heap overflow and a
#                                   use-after-free, and expect both reported
#   scripts/asan.sh test/x.test.ts  run only these test files
#   PAGEWARM_ASAN_EXCLUDE=<regex>   test files to leave out (default: cli, pack, fallback, core-slowdisk)
#
# How it works
# - The build is separate: binding.gyp and src/ are copied to $ASAN_DIR
#   (default build-asan/, git-ignored) and built there with node-gyp -C, so
#   build/ (everyone else's) is never touched.
# - node-gyp-build loads $PAGEWARM_PREBUILD/build/Release/pagewarm.node when
#   PAGEWARM_PREBUILD is set (its <NAME>_PREBUILD rule), in every process and
#   worker the tests start, since they inherit the environment. A preflight
#   check proves the sanitized binary is the one loaded.
# - Node itself is not instrumented, so libasan is LD_PRELOADed (ASan's
#   runtime must come first; it then also intercepts Node's malloc/free, so a
#   heap error in the addon is caught whoever allocated the memory).
# - detect_leaks=0: LeakSanitizer would report every allocation Node, V8 and
#   the tools the tests run (python3, fincore, curl) never free at exit, and
#   fail those processes. Leaks are checked by the tests themselves (open fds,
#   RSS bounds, pool counters) instead.
# - UBSan: -fno-sanitize-recover=all makes any undefined behaviour fatal
#   (all checks but vptr, see FLAGS).
# - Reports go to files under $ASAN_DIR/reports (log_path), so a report from
#   any process, even one whose exit status a test ignores, fails the run.
# - Tools the tests run (curl, python3, fincore, ...) get shims on PATH that
#   drop LD_PRELOAD: curl deadlocks at start-up under libasan.
# - PAGEWARM_ASAN=1 tells the tests: the property and soak tests run fewer
#   cases (sanitized code is 2-3x slower) and the soak does not assert its
#   RSS bound (ASan's quarantine keeps freed memory); no correctness check is
#   relaxed.
# - About 4.5 minutes on 2 cores for 20 test files, plus about 1.5 minutes
#   for a clean sanitized build.
#
# Needs: g++ with libasan and libubsan (Debian: g++ pulls in libgcc-12-dev,
# which depends on libasan8 and libubsan1), plus what npm test needs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ASAN_DIR=${ASAN_DIR:-$ROOT/build-asan}
REPORTS=$ASAN_DIR/reports
# -fno-sanitize=vptr: UBSan's vptr check probes memory with pipe(2) and, when
# no descriptor is free (fault-fds runs at its RLIMIT_NOFILE on purpose),
# reports a false "invalid vptr" that no suppression can silence. ASan still
# catches the use-after-free and overflow bugs that check would find.
FLAGS="-fsanitize=address,undefined -fno-sanitize=vptr -fno-sanitize-recover=all -fno-omit-frame-pointer -g -O1"

log() { printf '[asan] %s\n' "$*" >&2; }

libasan=$(${CXX:-g++} -print-file-name=libasan.so)
if [ ! -e "$libasan" ] || [ "$libasan" = libasan.so ]; then
  log "libasan.so not found for ${CXX:-g++} (install g++ / libasan8)"
  exit 2
fi

# build <dir> [patch-command]: copy the sources to <dir> and build them sanitized.
build() {
  local dir=$1
  mkdir -p "$dir"
  cp binding.gyp "$dir/"
  # rsync-like copy that keeps timestamps, so unchanged sources are not rebuilt
  mkdir -p "$dir/src"
  cp -p src/* "$dir/src/"
  if [ -n "${2:-}" ]; then (cd "$dir" && eval "$2"); fi
  local t0=$SECONDS
  # node-addon-api is found from the package's node_modules wherever $dir is.
  NODE_PATH=$ROOT/node_modules CXXFLAGS="$FLAGS" CFLAGS="$FLAGS" LDFLAGS="-fsanitize=address,undefined -fno-sanitize=vptr" \
    npx --no-install node-gyp -C "$dir" configure build --jobs=max >"$dir/build.log" 2>&1 ||
    { tail -40 "$dir/build.log" >&2; log "build failed: $dir/build.log"; exit 1; }
  ldd "$dir/build/Release/pagewarm.node" | grep libasan >/dev/null ||
    { log "$dir/build/Release/pagewarm.node is not linked with libasan"; exit 1; }
  log "built $dir/build/Release/pagewarm.node in $((SECONDS - t0)) s"
}

# Tools the tests run that must not get libasan preloaded: curl deadlocks at
# start-up under it, python3 takes 4 s to start. Each shim drops LD_PRELOAD
# and runs the real tool. (prlimit is not shimmed: it starts node.)
make_shims() {
  local shims=$1 tool real
  mkdir -p "$shims"
  for tool in curl python3 fincore mkfifo tar file id getconf sleep openssl mount umount wrk; do
    real=$(command -v "$tool" 2>/dev/null) || continue
    printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$@"\n' "$real" >"$shims/$tool"
    chmod +x "$shims/$tool"
  done
}

# The environment every sanitized process runs with.
sanitized_env() {
  local dir=$1
  make_shims "$dir/shims"
  export PATH=$dir/shims:$PATH
  export PAGEWARM_PREBUILD=$dir
  export PAGEWARM_ASAN=1
  export LD_PRELOAD=$libasan${LD_PRELOAD:+:$LD_PRELOAD}
  # malloc_context_size=8: allocation/free stacks of 8 frames (the error's own
  # stack stays complete); unwinding 30 frames on every malloc of Node's
  # doubles the run time. quarantine_size_mb=64: less memory per process.
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:malloc_context_size=8:quarantine_size_mb=64:detect_stack_use_after_return=0:allow_user_segv_handler=1:log_path=$REPORTS/asan:log_exe_name=1"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$REPORTS/ubsan:log_exe_name=1"
}

# Proves the sanitized addon (not build/ or a prebuild) is what loads, and ASan is live.
preflight() {
  node -e "
    const fs = require('fs');
    const pw = require('./dist/cjs/index.js');
    const maps = fs.readFileSync('/proc/self/maps', 'utf8');
    const want = require('path').join(process.env.PAGEWARM_PREBUILD, 'build/Release/pagewarm.node');
    if (!pw.capabilities().native) throw new Error('the native addon did not load: ' + pw.capabilities().fallbackReason);
    if (!maps.includes(want)) throw new Error('the sanitized addon is not the one loaded (want ' + want + ')');
    if (!/libasan\.so/.test(maps)) throw new Error('libasan is not mapped');
    console.error('[asan] preflight: ' + want + ' loaded, libasan mapped');
  "
}

# Fails (listing them) if any process wrote a sanitizer report.
check_reports() {
  local found
  found=$(find "$REPORTS" -type f -size +0 2>/dev/null | head -20)
  if [ -n "$found" ]; then
    log "sanitizer reports:"
    for f in $found; do echo "==== $f" >&2; head -60 "$f" >&2; done
    return 1
  fi
  return 0
}

self_test() {
  # A copy with two injected bugs, each behind an env switch, never in src/.
  local dir=$ASAN_DIR-selftest
  rm -rf "$dir/src"
  build "$dir" "
    python3 - <<'PY'
import re
p = 'src/warm.cc'
s = open(p).read()
# 1. heap-buffer-overflow: the read-fallback buffer one byte short, read into in full.
s = s.replace('if (!buffer) buffer.reset(new char[kReadBufferSize]);',
              'if (!buffer) buffer.reset(new char[getenv(\"PAGEWARM_INJECT_OVERFLOW\") ? kReadBufferSize - 1 : kReadBufferSize]);')
s = s.replace('#include <errno.h>', '#include <errno.h>\n#include <stdlib.h>', 1)
open(p, 'w').write(s)
p = 'src/env_queue.cc'
s = open(p).read()
# 2. heap-use-after-free: a settled job touched after it was deleted.
s = s.replace('    delete job;\n  }\n\n  if (scope', '    delete job;\n    if (getenv(\"PAGEWARM_INJECT_UAF\")) job->Cancel();\n  }\n\n  if (scope')
s = s.replace('#include \"env_queue.h\"', '#include \"env_queue.h\"\n\n#include <stdlib.h>', 1)
open(p, 'w').write(s)
PY
    grep -q PAGEWARM_INJECT_OVERFLOW src/warm.cc && grep -q PAGEWARM_INJECT_UAF src/env_queue.cc"
  local failed=0
  for bug in OVERFLOW UAF; do
    rm -rf "$REPORTS"; mkdir -p "$REPORTS"; chmod 1777 "$REPORTS"
    (
      sanitized_env "$dir"
      export PAGEWARM_INJECT_$bug=1
      node -e "
        const fs = require('fs');
        const pw = require('./dist/cjs/index.js');
        const { binding } = require('./dist/cjs/core/native.js');
        const path = require('os').tmpdir() + '/pagewarm-asan-selftest';
        fs.writeFileSync(path, Buffer.alloc(4 << 20, 1));
        const fd = fs.openSync(path, 'r+'); fs.fsyncSync(fd); pw.evict(fd);
        binding._testOnlySetFlags({ forceReadFallback: true });
        pw.prepareForRead(fd).then((n) => console.log('warmed', n));
      " >/dev/null 2>&1
    ) && status=0 || status=$?
    if grep -qs "heap-buffer-overflow\|heap-use-after-free" "$REPORTS"/*; then
      log "self-test $bug: caught ($(grep -ho 'ERROR: AddressSanitizer: [a-z-]*' "$REPORTS"/* | head -1)), exit status $status"
    else
      log "self-test $bug: NOT caught (exit status $status)"
      failed=1
    fi
  done
  rm -f "$(node -p "require('os').tmpdir()")/pagewarm-asan-selftest"
  return $failed
}

main() {
  local build_only=0 self=0 files=()
  for arg in "$@"; do
    case $arg in
      --build-only) build_only=1 ;;
      --self-test) self=1 ;;
      *) files+=("$arg") ;;
    esac
  done
  local t0=$SECONDS
  [ -f dist/cjs/index.js ] || npm run build:ts >/dev/null
  if [ $self = 1 ]; then self_test; return; fi

  build "$ASAN_DIR"
  [ $build_only = 1 ] && return 0

  rm -rf "$REPORTS"; mkdir -p "$REPORTS"; chmod 1777 "$REPORTS"
  sanitized_env "$ASAN_DIR"
  preflight
  if [ ${#files[@]} -eq 0 ]; then
    # Every test file that runs native code: all of them but those that only
    # exercise the fallback or packaging (they never load the addon).
    # Left out by default: cli, pack and fallback (packaging and the portable
    # fallback: they install or spawn the package and mostly run the
    # TypeScript fallback; minutes under ASan for little native coverage).
    # core-slowdisk asserts event-loop latency thresholds, which ASan's
    # slower malloc on the JS thread breaks; its native paths (abort
    # mid-range, fairness) run in other tests too.
    mapfile -t files < <(ls test/*.test.ts | grep -Ev "${PAGEWARM_ASAN_EXCLUDE:-test/(cli|pack|fallback|core-slowdisk)\.test\.ts}")
  fi
  log "running ${#files[@]} test files: ${files[*]}"
  local status=0
  npx --no-install tap --disable-coverage --jobs=2 --timeout=300 "${files[@]}" || status=$?
  check_reports || status=1
  log "done in $((SECONDS - t0)) s, exit status $status"
  return $status
}

main "$@"
