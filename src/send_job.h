// The send job: sendfile(2) from a file to a socket or other descriptor on
// pagewarm's threads, one chunk (the pool's chunk size) a slice, so one
// fast receiver cannot starve other jobs.
//
// A non-blocking destination that is full parks the job in the Poller
// (Slice::kWait on the destination, EPOLLOUT): no thread is held while a
// receiver is slow. A blocking destination holds one pool thread for as long
// as the receiver is slow, and a cancel takes effect when its sendfile call
// returns. sendSync runs the same job on the JS thread, where a kWait is a
// poll(2) on the destination (Job::RunToCompletion).
#pragma once
#include <cstdint>

#include "fd_ref.h"
#include "job.h"

namespace pagewarm {

class SendJob : public Job {
 public:
  SendJob() : Job("sendfile") {}

  FdRef file;  // the source
  FdRef out;   // the destination
  int64_t offset = 0;
  int64_t length = 0;
  int64_t sent_before = 0;  // sent from the JS thread before the job was queued

 protected:
  Slice Step() override;
  // The bytes sent, those sent before the job was queued included.
  Napi::Value Value(Napi::Env env) override;
  // Every failure says how much reached the destination before it (bytesSent).
  Napi::Value Reason(Napi::Value reason) override;

 private:
  int64_t done_ = 0;
  int64_t from_disk_ = 0;
};

}  // namespace pagewarm
