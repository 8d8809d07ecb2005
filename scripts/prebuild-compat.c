/*
 * Linked into the prebuilds only (scripts/prebuild.js), never into source
 * builds. The prebuilds carry their own hidden copy of libstdc++ so they load
 * where the system's libstdc++ is older than the one they were built with;
 * that copy's std::random_device refers to arc4random, which glibc gained
 * only in 2.36. pagewarm never uses random_device, but the reference alone
 * would raise the glibc the prebuild needs from 2.34 to 2.36 (ruling out
 * Ubuntu 22.04, RHEL 9 and Amazon Linux 2023). This hidden definition
 * satisfies it with getrandom(2) (glibc 2.25).
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/random.h>

__attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t value;
  size_t got = 0;
  while (got < sizeof value) {
    ssize_t n = getrandom((char*)&value + got, sizeof value - got, 0);
    if (n > 0) got += (size_t)n;
  }
  return value;
}
