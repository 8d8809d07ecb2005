// warm / warmSync: prepareForRead and prepareForReadSync.
#include <algorithm>
#include <memory>

#include "addon.h"
#include "args.h"
#include "pool.h"
#include "residency.h"
#include "stats.h"
#include "values.h"
#include "warm.h"

namespace pagewarm {
namespace {

// Ranges up to this size are checked on the JS thread; larger ones on
// pagewarm's threads. The check reads the range into a scratch buffer with
// RWF_NOWAIT (see ReadableWithoutWaiting), a copy at memory speed, so the
// bound keeps it cheaper than the two thread hand-offs it saves.
constexpr int64_t kFastPathMax = 512 << 10;

// Warms [offset, offset + length) one chunk (the pool's chunk size) a slice,
// and resolves with the bytes covered (short only at the end of the file).
class WarmJob : public Job {
 public:
  explicit WarmJob(const TestFlags& flags) : Job("sendfile") {
    state_.read_fallback = flags.force_read_fallback;
  }

  FdRef file;
  int64_t offset = 0;
  int64_t length = 0;

 protected:
  Slice Step() override {
    int64_t chunk = std::min(length - done_, Pool::Get().chunk_size());
    bool eof = false;
    SysResult r;
    // What the read brought into the page cache is what the disk gave: the
    // tracing channels' fromDisk, and stats().fromDiskBytes.
    int64_t from_disk = FromDiskDuring(file, offset + done_, chunk, [&] { r = WarmChunk(file, &state_, offset + done_, chunk, &eof); });
    if (!r.ok()) return Fail(r);
    done_ += r.value;
    from_disk_ += from_disk;
    Count(Counters().from_disk_bytes, from_disk);
    Progress(done_, from_disk_);
    return (eof || done_ >= length) ? Slice::kDone : Slice::kMore;
  }

  Napi::Value Value(Napi::Env env) override { return CountValue(env, done_); }

 private:
  WarmState state_;
  int64_t done_ = 0;
  int64_t from_disk_ = 0;
};

// Checks fd for warming (without a duplicate yet) and resolves the range.
SysResult InspectForWarming(WarmJob* job, int fd, int64_t offset, int64_t length,
                            ByteRange* range) {
  SysResult r = job->file.Inspect(fd, FdUse::kReadFile, "sendfile");
  if (r.ok()) r = ResolveRange(job->file, offset, length, "sendfile", range);
  job->offset = range->offset;
  job->length = range->length;
  job->progress_total.store(range->in_file, std::memory_order_relaxed);
  return r;
}

// Takes the descriptor the warm-up works on (a buffered reopen for O_DIRECT).
SysResult AdoptForWarming(WarmJob* job, const PinnedFds& pinned) {
  SysResult r = job->file.Adopt("sendfile", true, &pinned);
  if (r.ok() && job->file.reopened()) Count(Counters().direct_reopens);
  return r;
}

}  // namespace

// warm(fd, offset, length, id, traced?) -> number | Promise<number> | {errno, syscall}
// A number when the answer is known on the JS thread: an empty range, one
// past the end, or one that is resident and readable now (the fast path).
// With `traced` a queued job resolves with { value, fromDisk, queuedMs }
// (see Job::traced).
Napi::Value Binding::Warm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t offset, length;
  uint32_t id;
  if (!ArgFd(info, 0, &fd) || !ArgInt64(info, 1, &offset) || !ArgInt64(info, 2, &length) ||
      !ArgJobId(info, 3, &id))
    return Napi::Value();

  std::unique_ptr<WarmJob> job(new WarmJob(test_flags));
  ByteRange range;
  SysResult r = InspectForWarming(job.get(), fd, offset, length, &range);
  if (!r.ok()) return SysErrorValue(env, r);
  if (range.empty()) return CountValue(env, 0);
  // Resident is not enough: a page whose read is still in flight counts as
  // resident, and settling now would promise pages that have not landed.
  // ReadableWithoutWaiting() also asks the kernel whether every page can be
  // read without waiting. An O_DIRECT descriptor cannot be asked that (its
  // reads bypass the page cache): such ranges go to the pool, which warms
  // through a buffered reopen.
  if (range.in_file <= kFastPathMax && !job->file.direct() &&
      ReadableWithoutWaiting(job->file.fd(), range.offset, range.in_file)) {
    Count(Counters().fast_path_hits);
    Count(Counters().warmed_bytes, range.in_file);
    return CountValue(env, range.in_file);
  }

  r = AdoptForWarming(job.get(), pinned);
  if (!r.ok()) return SysErrorValue(env, r);
  job->id = id;
  job->traced = info.Length() > 4 && info[4].ToBoolean().Value();
  return queue->Submit(env, job.release());
}

// warmSync(fd, offset, length, traced?) -> number | {errno, syscall}. Blocks:
// the job warm() would queue, run to completion on the calling thread. With
// `traced`: { value, fromDisk, queuedMs: 0 } (see Job::traced).
Napi::Value Binding::WarmSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t offset, length;
  if (!ArgFd(info, 0, &fd) || !ArgInt64(info, 1, &offset) || !ArgInt64(info, 2, &length))
    return Napi::Value();

  WarmJob job(test_flags);
  ByteRange range;
  SysResult r = InspectForWarming(&job, fd, offset, length, &range);
  if (!r.ok()) return SysErrorValue(env, r);
  // Empty, or at or past the end: 0, as warm() answers. No duplicate is
  // needed for that (sendFile checks descriptors this way).
  if (range.empty()) return CountValue(env, 0);
  r = AdoptForWarming(&job, pinned);
  if (!r.ok()) return SysErrorValue(env, r);
  job.traced = info.Length() > 3 && info[3].ToBoolean().Value();
  job.RunToCompletion();
  return job.Outcome(env);
}

}  // namespace pagewarm
