/*
 * Diagnostic for a finding in BENCHMARKS.md (not run by the benchmarks):
 * warms an evicted file the way pagewarm's WarmChunk does (sendfile to
 * /dev/null, CHUNK bytes per call) with three policies for the "skip chunks
 * that cachestat(2) reports fully resident" check:
 *   0: never check, 1: check every chunk (pagewarm today), 2: check only the
 *   first chunk.
 * With the kernel's readahead running ahead of a sequential warm-up, the
 * next chunk is often already "cached" (its pages are in the page cache with
 * I/O in flight), so policy 1 skips it; the readahead then restarts
 * synchronously at the chunk after, and CPU time rises about threefold.
 *
 * build: cc -O2 -o skip_probe bench/c/skip_probe.c
 * usage: skip_probe FILE [CHUNK_BYTES] [POLICY]     (the file is evicted first)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "clock.h"

#ifndef __NR_cachestat
#define __NR_cachestat 451
#endif

struct cs_range { uint64_t off, len; };
struct cs { uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted; };

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE [CHUNK_BYTES] [POLICY 0|1|2]\n", argv[0]);
    return 2;
  }
  long chunk = argc > 2 ? atol(argv[2]) : 8L << 20;
  int policy = argc > 3 ? atoi(argv[3]) : 1;
  int in = open(argv[1], O_RDONLY), out = open("/dev/null", O_WRONLY);
  struct stat st;
  if (in < 0 || out < 0 || fstat(in, &st) < 0) {
    perror("open");
    return 1;
  }
  posix_fadvise(in, 0, 0, POSIX_FADV_DONTNEED);
  double t0 = now(), c0 = cpu();
  long skips = 0, sends = 0;
  for (off_t off = 0; off < st.st_size;) {
    long len = st.st_size - off < chunk ? st.st_size - off : chunk;
    if (policy == 1 || (policy == 2 && off == 0)) {
      struct cs_range r = {(uint64_t)off, (uint64_t)len};
      struct cs c;
      if (syscall(__NR_cachestat, in, &r, &c, 0) == 0 && c.nr_cache * 4096 >= (uint64_t)len) {
        off += len;
        skips++;
        continue;
      }
    }
    off_t pos = off;
    ssize_t n = sendfile(out, in, &pos, len);
    if (n <= 0) break;
    off += n;
    sends++;
  }
  printf("policy %d chunk %ld: wall %.3f s, cpu %.4f s, %ld chunks skipped as resident, %ld sent\n", policy, chunk, now() - t0,
         cpu() - c0, skips, sends);
  return 0;
}
