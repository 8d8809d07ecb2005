#!/bin/sh
# Installs the outside tools the benchmarks use: nginx (the http benchmark's
# reference server, started by the benchmark on 127.0.0.1 only, one worker,
# `sendfile on`), wrk (its load generator; autocannon is used without it),
# and python3-fusepy with fuse3 (the restart benchmark's slow disk,
# bench/lib/slowfs.py). Debian/Ubuntu, as root. The http benchmark runs this
# itself when nginx or wrk is missing and it runs as root; pass --no-install
# to the benchmark to skip.
set -e
need=""
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need="$need nginx"
command -v wrk >/dev/null 2>&1 || need="$need wrk"
/usr/bin/python3 -c 'import fusepy' >/dev/null 2>&1 || need="$need python3-fusepy"
command -v fusermount3 >/dev/null 2>&1 || need="$need fuse3"
if [ -z "$need" ]; then
  echo "bench/setup.sh: nginx, wrk, python3-fusepy and fuse3 are installed"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "bench/setup.sh: need root to apt-get install$need" >&2
  exit 1
fi
echo "bench/setup.sh: apt-get install -y$need"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends $need || { apt-get update && apt-get install -y --no-install-recommends $need; }
# Debian starts nginx on port 80 after installing it: the benchmark runs its
# own instance, so stop the system one (when there is a service manager).
if command -v systemctl >/dev/null 2>&1; then systemctl stop nginx >/dev/null 2>&1 || true; fi
if [ -f /run/nginx.pid ]; then kill "$(cat /run/nginx.pid)" 2>/dev/null || true; fi
