#include "job.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>

#include "poller.h"
#include "stats.h"
#include "values.h"

namespace pagewarm {
namespace {

static_assert(EPOLLIN == POLLIN && EPOLLOUT == POLLOUT, "wait_events are read as poll(2) events");

// The reason for a settlement that failed to build its own: a plain Error
// made with raw napi calls, which report failure instead of throwing.
napi_value FallbackReason(napi_env env, const char* message) {
  napi_value text = nullptr;
  napi_value error = nullptr;
  if (napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text) == napi_ok &&
      napi_create_error(env, nullptr, text, &error) == napi_ok)
    return error;
  napi_value undefined = nullptr;
  napi_get_undefined(env, &undefined);
  return undefined;
}

}  // namespace

int64_t SteadyNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Slice Job::RunSlice() {
  if (started_ns.load(std::memory_order_relaxed) == 0) {
    int64_t now = SteadyNs();
    started_ns.store(now, std::memory_order_relaxed);
    if (queued_ns != 0) Count(Counters().queued_ns, now - queued_ns);
  }
  if (cancelled()) {
    aborted_ = true;
    return Slice::kDone;
  }
  return Step();
}

void Job::RunToCompletion() {
  for (;;) {
    Slice how = RunSlice();
    if (how == Slice::kDone) return;
    if (how == Slice::kWait) {
      struct pollfd p = {wait_fd, static_cast<short>(wait_events), 0};
      while (poll(&p, 1, -1) < 0 && errno == EINTR) {
      }
    }
  }
}

Napi::Value Job::Result(Napi::Env env, bool* rejected) {
  *rejected = aborted_ || !error_.ok();
  Napi::Value value;
  if (aborted_) {
    value = Reason(CancelledValue(env, syscall_));
  } else if (!error_.ok()) {
    value = Reason(SysErrorValue(env, error_));
  } else {
    value = Value(env);
  }
  if (!traced || value.IsEmpty()) return value;
  // The time waiting for a pool thread, and the bytes read from the disk.
  int64_t started = started_ns.load(std::memory_order_relaxed);
  double queued_ms = queued_ns != 0 && started != 0 ? static_cast<double>(started - queued_ns) / 1e6 : 0;
  Napi::Object out;
  if (*rejected && value.IsObject()) {
    out = value.As<Napi::Object>();
  } else {
    out = Napi::Object::New(env);
    out.Set("value", value);
  }
  out.Set("fromDisk", Napi::Number::New(env, static_cast<double>(progress_from_disk())));
  out.Set("queuedMs", Napi::Number::New(env, queued_ms));
  return out;
}

Napi::Value Job::Outcome(Napi::Env env) {
  bool rejected;
  return Result(env, &rejected);
}

void Job::Settle(Napi::Env env, napi_deferred deferred) {
  bool rejected = true;
  napi_value value = nullptr;
  try {
    value = Result(env, &rejected);
  } catch (const Napi::Error& e) {
    // node-addon-api took the pending exception into e: reject with it.
    rejected = true;
    value = e.Value();
  } catch (const std::exception& e) {
    rejected = true;
    value = FallbackReason(env, e.what());
  }
  if (value == nullptr) {
    rejected = true;
    value = FallbackReason(env, "pagewarm: could not settle the operation");
  }
  if (value == nullptr) return;  // the environment is stopping: nothing can settle
  // napi_resolve/reject_deferred free the deferred whatever they return; a
  // failure here means the environment is stopping.
  if (rejected) {
    napi_reject_deferred(env, deferred, value);
  } else {
    napi_resolve_deferred(env, deferred, value);
  }
}

void Job::Cancel() {
  cancelled_.store(true, std::memory_order_seq_cst);
  if (Poller* poller = parked_in_.load(std::memory_order_seq_cst)) poller->Cancelled(this);
}

}  // namespace pagewarm
