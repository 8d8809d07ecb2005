/*
 * C reference for the send benchmark: connects to ADDRESS:PORT and sends a
 * whole file with a blocking sendfile(2) loop (or, with "rw", a read(2) +
 * write(2) loop through a 1 MiB buffer). Prints one JSON line: bytes, wall
 * and CPU seconds of the loop (connection set-up excluded).
 *
 * usage: send_ref PORT FILE [sendfile|rw [ADDRESS]]   (ADDRESS: IPv4, default 127.0.0.1)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "clock.h"

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s PORT FILE [sendfile|rw [ADDRESS]]\n", argv[0]);
    return 2;
  }
  int rw = argc > 3 && strcmp(argv[3], "rw") == 0;
  int in = open(argv[2], O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (in < 0 || fstat(in, &st) < 0) {
    perror("open");
    return 1;
  }
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons(atoi(argv[1]));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (argc > 4 && inet_pton(AF_INET, argv[4], &a.sin_addr) != 1) {
    fprintf(stderr, "send_ref: not an IPv4 address: %s\n", argv[4]);
    return 2;
  }
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("connect");
    return 1;
  }
  static char buf[1 << 20];
  double t0 = now(), c0 = cpu();
  long long done = 0;
  while (done < st.st_size) {
    ssize_t n;
    if (rw) {
      n = pread(in, buf, sizeof buf, done);
      if (n <= 0) break;
      for (ssize_t w = 0; w < n;) {
        ssize_t k = write(s, buf + w, n - w);
        if (k < 0) {
          perror("write");
          return 1;
        }
        w += k;
      }
    } else {
      off_t off = done;
      n = sendfile(s, in, &off, st.st_size - done);
      if (n <= 0) {
        if (n < 0) perror("sendfile");
        break;
      }
    }
    done += n;
  }
  double t1 = now(), c1 = cpu();
  close(s);
  printf("{\"bytes\":%lld,\"wall\":%.6f,\"cpu\":%.6f}\n", done, t1 - t0, c1 - c0);
  return 0;
}
