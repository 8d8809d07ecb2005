// The system-call level of a send: sendfile(2) from a file to a socket or
// other descriptor, and SIGPIPE kept away from the JS thread.
//
// SIGPIPE: a peer that went away makes sendfile raise SIGPIPE in the calling
// thread. Pool threads block every signal, so there it stays pending and
// harmless. A send made on a JS thread (sendSync, the inline start of send)
// blocks SIGPIPE for the call (SigpipeGuard), so EPIPE is reported even where
// SIGPIPE's disposition is SIG_DFL (an embedder, or a removed
// process.on('SIGPIPE') listener).
#pragma once
#include <errno.h>
#include <signal.h>

#include <cstdint>

#include "sys_result.h"

namespace pagewarm {

// Sends up to `length` bytes of `in` from `offset` to `out`; stops early at
// the end of the file (*eof) or when the destination would block
// (*would_block). On failure, value is what was sent before it.
SysResult SendSome(int out, int in, int64_t offset, int64_t length, bool* eof, bool* would_block);

// Blocks SIGPIPE on the calling thread for its lifetime. If our sendfile
// failed with EPIPE (which raised SIGPIPE at this thread), the pending signal
// is consumed before the old mask comes back, so it is never delivered.
class SigpipeGuard {
 public:
  SigpipeGuard();
  ~SigpipeGuard();
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;
  // Tells the guard how a send under it ended.
  void Saw(const SysResult& r) {
    if (r.err == EPIPE) raised_ = true;
  }

 private:
  sigset_t pipe_;
  sigset_t old_;
  bool was_pending_ = false;
  bool raised_ = false;
};

}  // namespace pagewarm
