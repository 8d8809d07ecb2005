/* Wall and CPU clocks shared by the C references of the benchmarks. */
#ifndef PAGEWARM_BENCH_CLOCK_H
#define PAGEWARM_BENCH_CLOCK_H
#include <sys/resource.h>
#include <time.h>

/* Monotonic wall clock, seconds. */
static inline double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* User + system CPU of this process, seconds. */
static inline double cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}
#endif
