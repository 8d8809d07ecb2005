/*
 * A discarding TCP receiver for the send benchmark: listens on ADDRESS
 * (an ephemeral port, printed as "port N" on stdout), accepts connections one
 * at a time, reads each into a 1 MiB buffer until the peer closes, and
 * prints "bytes N" per connection. Exits when stdin closes (its parent died
 * or is done) or after MAX_SECONDS.
 *
 * usage: sink [MAX_SECONDS [ADDRESS]]   (ADDRESS: an IPv4 address, default 127.0.0.1)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 20];

int main(int argc, char **argv) {
  int max_seconds = argc > 1 ? atoi(argv[1]) : 3600;
  time_t deadline = time(NULL) + max_seconds;
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (argc > 2 && inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) {
    fprintf(stderr, "sink: not an IPv4 address: %s\n", argv[2]);
    return 2;
  }
  if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 16) < 0) {
    perror("listen");
    return 1;
  }
  socklen_t len = sizeof a;
  getsockname(ls, (struct sockaddr *)&a, &len);
  printf("port %d\n", ntohs(a.sin_port));
  fflush(stdout);
  while (time(NULL) < deadline) {
    struct pollfd p[2] = {{ls, POLLIN, 0}, {0, POLLIN, 0}};
    if (poll(p, 2, 1000) < 0) continue;
    if (p[1].revents) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n <= 0) break; /* stdin closed: done */
    }
    if (!(p[0].revents & POLLIN)) continue;
    int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) continue;
    long long total = 0;
    for (;;) {
      ssize_t n = read(c, buf, sizeof buf);
      if (n <= 0) break;
      total += n;
    }
    close(c);
    printf("bytes %lld\n", total);
    fflush(stdout);
  }
  return 0;
}
