// warm / warmSync: prepareForRead and prepareForReadSync.
#include <algorithm>
#include <memory>

#include "addon.h"
#include "pool.h"
#include "residency.h"
#include "warm.h"

namespace pagewarm {
namespace {

// Ranges up to this size are checked on the JS thread; larger ones on
// pagewarm's threads. The check reads the range into a scratch buffer with
// RWF_NOWAIT (see ReadableWithoutWaiting), a copy at memory speed, so the
// bound keeps it cheaper than the two thread hand-offs it saves.
constexpr int64_t kFastPathMax = 512 << 10;

class WarmJob : public Job {
 public:
  Slice RunSlice() override {
    if (cancelled()) {
      aborted_ = true;
      return Slice::kDone;
    }
    int64_t chunk = std::min(length - done_, Pool::Get().chunk_size());
    bool eof = false;
    SysResult r = WarmChunk(file, &state_, offset + done_, chunk, &eof);
    if (!r.ok()) {
      error_ = r;
      return Slice::kDone;
    }
    done_ += r.value;
    return (eof || done_ >= length) ? Slice::kDone : Slice::kMore;
  }

 protected:
  Napi::Value Result(Napi::Env env, bool* rejected) override {
    *rejected = aborted_ || !error_.ok();
    if (aborted_) return CancelledValue(env, "sendfile");
    if (!error_.ok()) return SysErrorValue(env, error_);
    return Napi::Number::New(env, static_cast<double>(done_));
  }

 public:
  FileRef file;
  int64_t offset = 0;
  int64_t length = 0;

 private:
  WarmState state_;
  int64_t done_ = 0;
  SysResult error_;
  bool aborted_ = false;
};

// Checks fd for warming and resolves the default length (-1: to the end).
SysResult InspectRange(FileRef* file, int64_t fd, int64_t offset, int64_t* length) {
  SysResult r = file->Inspect(fd, "sendfile");
  if (r.ok() && offset < 0) r = SysResult::Fail(EINVAL, "sendfile");  // as sendfile(2) says
  if (r.ok() && *length < 0) *length = ClampRange(file->size(), offset, INT64_MAX);
  return r;
}

// Takes the duplicate the warm-up works on (a buffered reopen for O_DIRECT).
SysResult AdoptForWarming(FileRef* file) {
  SysResult r = file->Adopt("sendfile", true);
  if (r.ok() && file->reopened()) Counters().direct_reopens.fetch_add(1, std::memory_order_relaxed);
  return r;
}

}  // namespace

// warm(fd, offset, length, id) -> number | Promise<number> | {errno, syscall}
// A number when the answer is known on the JS thread: an empty range, one
// past the end, or one that cachestat shows fully resident (the fast path).
Napi::Value Binding::Warm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, offset, length, id;
  if (!ArgInt64(info, 0, &fd) || !ArgInt64(info, 1, &offset) ||
      !ArgInt64(info, 2, &length) || !ArgInt64(info, 3, &id))
    return Napi::Value();

  std::unique_ptr<WarmJob> job(new WarmJob());
  SysResult r = InspectRange(&job->file, fd, offset, &length);
  if (!r.ok()) return SysErrorValue(env, r);

  int64_t in_bounds = ClampRange(job->file.size(), offset, length);
  if (length == 0 || in_bounds == 0) return Napi::Number::New(env, 0);
  // Resident is not enough: a page whose read is still in flight counts as
  // resident, and settling now would promise pages that have not landed.
  // ReadableWithoutWaiting() also asks the kernel whether every page can be
  // read without waiting. An O_DIRECT descriptor cannot be asked that (its
  // reads bypass the page cache): such ranges go to the pool, which warms
  // through a buffered reopen.
  if (in_bounds <= kFastPathMax && !job->file.direct() &&
      ReadableWithoutWaiting(job->file.fd(), offset, in_bounds)) {
    Counters().fast_path_hits.fetch_add(1, std::memory_order_relaxed);
    Counters().warmed_bytes.fetch_add(in_bounds, std::memory_order_relaxed);
    return Napi::Number::New(env, static_cast<double>(in_bounds));
  }

  r = AdoptForWarming(&job->file);
  if (!r.ok()) return SysErrorValue(env, r);
  job->id = static_cast<uint32_t>(id);
  job->offset = offset;
  job->length = length;
  return queue->Submit(env, job.release());
}

// warmSync(fd, offset, length) -> number | {errno, syscall}. Blocks.
Napi::Value Binding::WarmSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, offset, length;
  if (!ArgInt64(info, 0, &fd) || !ArgInt64(info, 1, &offset) || !ArgInt64(info, 2, &length))
    return Napi::Value();

  FileRef file;
  SysResult r = InspectRange(&file, fd, offset, &length);
  if (!r.ok()) return SysErrorValue(env, r);
  // Empty, or at or past the end: 0, as warm() answers (sendfile would say
  // EOVERFLOW for offsets beyond the filesystem's maximum file size). No
  // duplicate is needed for that (sendFile checks descriptors this way).
  if (length == 0 || ClampRange(file.size(), offset, length) == 0) return Napi::Number::New(env, 0);
  r = AdoptForWarming(&file);
  if (!r.ok()) return SysErrorValue(env, r);

  WarmState state;
  int64_t done = 0;
  int64_t chunk_size = Pool::Get().chunk_size();
  while (done < length) {
    bool eof = false;
    r = WarmChunk(file, &state, offset + done, std::min(length - done, chunk_size), &eof);
    if (!r.ok()) return SysErrorValue(env, r);
    done += r.value;
    if (eof) break;
  }
  return Napi::Number::New(env, static_cast<double>(done));
}

}  // namespace pagewarm
