/*
 * C reference for the warm benchmark: sendfile(2) from a file to /dev/null
 * in a loop until end of file (what Kafka's prepareForRead does, KAFKA-7504),
 * on one thread. Prints one JSON line: bytes, wall and CPU seconds of the
 * loop itself (process start-up excluded).
 *
 * usage: warm_ref FILE...   (one after another; env WARM_REF_CHUNK = bytes per call)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <unistd.h>
#include "clock.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE...\n", argv[0]);
    return 2;
  }
  const char *env = getenv("WARM_REF_CHUNK");
  size_t chunk = env ? strtoull(env, NULL, 10) : 0x7ffff000;
  int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (out < 0) {
    perror("open /dev/null");
    return 1;
  }
  double t0 = now(), c0 = cpu();
  long long total = 0;
  for (int i = 1; i < argc; i++) {
    int in = open(argv[i], O_RDONLY | O_CLOEXEC);
    if (in < 0) {
      perror(argv[i]);
      return 1;
    }
    off_t off = 0;
    for (;;) {
      ssize_t n = sendfile(out, in, &off, chunk);
      if (n == 0) break;
      if (n < 0) {
        perror("sendfile");
        return 1;
      }
    }
    total += off;
    close(in);
  }
  double t1 = now(), c1 = cpu();
  printf("{\"bytes\":%lld,\"wall\":%.6f,\"cpu\":%.6f}\n", total, t1 - t0, c1 - c0);
  return 0;
}
