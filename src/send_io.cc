#include "send_io.h"

#include <errno.h>
#include <pthread.h>
#include <sys/sendfile.h>
#include <time.h>

#include <algorithm>

#include "warm.h"

namespace pagewarm {

SysResult SendSome(int out, int in, int64_t offset, int64_t length, bool* eof, bool* would_block) {
  int64_t done = 0;
  *eof = *would_block = false;
  while (done < length) {
    off_t pos = offset + done;
    ssize_t n = sendfile(out, in, &pos, std::min(length - done, kMaxIoPerCall));
    if (n > 0) {
      done += n;
      continue;
    }
    if (n == 0) {
      *eof = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      *would_block = true;
      break;
    }
    SysResult r = SysResult::Fail(errno, "sendfile");
    r.value = done;
    return r;
  }
  return SysResult::Ok(done);
}

SigpipeGuard::SigpipeGuard() {
  sigemptyset(&pipe_);
  sigaddset(&pipe_, SIGPIPE);
  sigset_t pending;
  sigemptyset(&pending);
  was_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
}

SigpipeGuard::~SigpipeGuard() {
  if (raised_ && !was_pending_) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

}  // namespace pagewarm
