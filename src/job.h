// A unit of work that runs on pagewarm's threads and settles a JS promise.
//
// A job is created on the JS thread, sliced by the pool (one slice at a time,
// round-robin with every other job, so a small job never waits behind all of
// a large one), and handed back to its environment's queue when done. It
// never touches napi off the JS thread: Settle() runs on the owning thread.
//
// The slice protocol. The pool calls RunSlice(), which calls the job's
// Step() unless the job was cancelled. Step() does one bounded piece of the
// work and answers kMore (requeue me), kWait (park me until wait_fd is
// ready) or kDone (finished, or failed through Fail()). This base holds what
// every job shares: the cancellation, the failure, and how both become the
// rejection reason ({ errno, syscall } or { ..., aborted: true }, under the
// operation's call). A job supplies only Step(), its resolution (Value())
// and, if it has one, what it adds to a reason (Reason()).
//
// A sync call (warmSync, residencySync, sendSync) builds the same job and
// runs it with RunToCompletion() on the calling thread, then returns
// Outcome(): the resolution, or the failure object.
#pragma once
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <time.h>

#include "sys_result.h"

namespace pagewarm {

class EnvQueue;
class Poller;

enum class Slice {
  kMore,  // more to do: requeue behind the other jobs
  kDone,  // finished (or failed, or cancelled): settle it
  kWait,  // waiting for wait_fd to become ready (see Poller)
};

// The steady clock in nanoseconds.
int64_t SteadyNs();

class Job {
 public:
  virtual ~Job() = default;

  // One slice. Pool threads, or the calling thread of a sync call. Once the
  // job is cancelled, a slice only records that and returns kDone: the pool
  // relies on it to finish cancelled jobs at teardown (Pool::Run,
  // Pool::Resume).
  Slice RunSlice();
  // Runs slices until the job is done, waiting in poll(2) for wait_fd
  // whenever a slice returns kWait. Blocks the calling thread: the sync calls.
  void RunToCompletion();
  // What a sync call returns: the resolution, or the failure object.
  Napi::Value Outcome(Napi::Env env);
  // Resolves or rejects the promise, exactly once, whatever the value
  // builders do. The owning JS thread only.
  void Settle(Napi::Env env, napi_deferred deferred);

  // Asks the job to stop at its next slice. A job parked in the Poller is
  // handed to it to be resumed at once (its descriptor may never become
  // ready). The owning JS thread only, while the job is in flight.
  void Cancel();
  bool cancelled() const { return cancelled_.load(std::memory_order_seq_cst); }
  // The failure Fail() recorded (ok() when there was none).
  const SysResult& error() const { return error_; }

  std::shared_ptr<EnvQueue> owner;
  napi_deferred deferred = nullptr;
  uint32_t id = 0;
  // Set on the JS thread before submission: the resolution is then
  // { value, fromDisk, queuedMs } and a rejection reason carries fromDisk
  // and queuedMs too (the tracing channels of lib/core/trace.ts).
  bool traced = false;

  // Progress, written by the thread running the job and read by the JS
  // thread at any time (binding.progress(id)): bytes done of `total`, and of
  // those the bytes that were not in the page cache when they were read.
  void Progress(int64_t done, int64_t from_disk) {
    done_.store(done, std::memory_order_relaxed);
    from_disk_.store(from_disk, std::memory_order_relaxed);
  }
  int64_t progress_done() const { return done_.load(std::memory_order_relaxed); }
  int64_t progress_from_disk() const { return from_disk_.load(std::memory_order_relaxed); }
  std::atomic<int64_t> progress_total{-1};
  // When the job was handed to the pool (EnvQueue::Submit) and when its first
  // slice began (steady clock, ns; 0: not yet).
  int64_t queued_ns = 0;
  std::atomic<int64_t> started_ns{0};
  // For Slice::kWait: the descriptor and epoll events to wait for.
  int wait_fd = -1;
  uint32_t wait_events = 0;

 protected:
  // `syscall`: the call the operation reports when it is cancelled.
  explicit Job(const char* syscall) : syscall_(syscall) {}

  // One bounded slice of the work; never called once the job is cancelled.
  virtual Slice Step() = 0;
  // The resolution of a job that neither failed nor was cancelled. JS
  // thread. It may throw (a napi call failing): Settle() then rejects with
  // what was thrown, so the promise never stays pending.
  virtual Napi::Value Value(Napi::Env env) = 0;
  // The rejection reason built by this base, for a job to add its own
  // fields to (a send: bytesSent). JS thread; it may throw too.
  virtual Napi::Value Reason(Napi::Value reason) { return reason; }
  // Records a failure and returns kDone, for `return Fail(r);` in Step().
  Slice Fail(const SysResult& r) {
    error_ = r;
    return Slice::kDone;
  }

 private:
  friend class Poller;
  // The settlement: *rejected says which way, the value is the resolution or
  // the reason.
  Napi::Value Result(Napi::Env env, bool* rejected);

  const char* syscall_;
  SysResult error_;
  bool aborted_ = false;  // a slice saw the cancellation
  std::atomic<bool> cancelled_{false};
  // The poller holding the job parked, or null. With cancelled_, both
  // seq_cst: Cancel() stores the flag then reads this, Park() stores this
  // then reads the flag, so at least one of them sees the other.
  std::atomic<Poller*> parked_in_{nullptr};
  std::atomic<int64_t> done_{0};
  std::atomic<int64_t> from_disk_{0};
};

}  // namespace pagewarm
