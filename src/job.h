// A unit of work that runs on pagewarm's threads and settles a JS promise.
//
// A job is created on the JS thread, sliced by the pool (one slice at a time,
// round-robin with every other job, so a small job never waits behind all of
// a large one), and handed back to its environment's queue when done. It
// never touches napi off the JS thread: Settle() runs on the owning thread.
#pragma once
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include "sys_result.h"

namespace pagewarm {

class EnvQueue;
class Poller;

enum class Slice {
  kMore,  // more to do: requeue behind the other jobs
  kDone,  // finished (or failed, or cancelled): settle it
  kWait,  // waiting for wait_fd to become ready (see Poller)
};

class Job {
 public:
  virtual ~Job() = default;

  // Runs one bounded slice of the work. Pool threads only. Once cancelled,
  // the next slice must only record that and return kDone: the pool relies
  // on it to finish cancelled jobs at teardown (Pool::Run, Pool::Resume).
  virtual Slice RunSlice() = 0;
  // Resolves or rejects the promise, exactly once, whatever Result() does.
  // The owning JS thread only (poller.cc).
  void Settle(Napi::Env env, napi_deferred deferred);

  // Asks the job to stop at its next slice. A job parked in the Poller is
  // handed to it to be resumed at once (its descriptor may never become
  // ready). The owning JS thread only, while the job is in flight.
  void Cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_seq_cst); }

  std::shared_ptr<EnvQueue> owner;
  napi_deferred deferred = nullptr;
  uint32_t id = 0;
  // For Slice::kWait: the descriptor and epoll events to wait for.
  int wait_fd = -1;
  uint32_t wait_events = 0;

 protected:
  // The settlement: *rejected says which way, the value is the resolution or
  // the reason. It may throw (a napi call failing): Settle() then rejects
  // with what was thrown, so the promise never stays pending.
  virtual Napi::Value Result(Napi::Env env, bool* rejected) = 0;

 private:
  friend class Poller;
  std::atomic<bool> cancelled_{false};
  // The poller holding the job parked, or null. With cancelled_, both
  // seq_cst: Cancel() stores the flag then reads this, Park() stores this
  // then reads the flag, so at least one of them sees the other.
  std::atomic<Poller*> parked_in_{nullptr};
};

// The plain object the TypeScript layer turns into a Node-style error.
Napi::Value SysErrorValue(Napi::Env env, const SysResult& r);
// The rejection reason of a cancelled job (errno ECANCELED, aborted: true).
Napi::Value CancelledValue(Napi::Env env, const char* syscall);

}  // namespace pagewarm
