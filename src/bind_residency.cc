// residency / residencySync / advise.
#include <fcntl.h>

#include <memory>

#include "addon.h"
#include "args.h"
#include "residency.h"
#include "values.h"

namespace pagewarm {
namespace {

const char* ResidencySyscall() { return HaveCachestat() ? "cachestat" : "mincore"; }

// One query, in one slice: cachestat is one call, mincore a pass over
// bounded mappings.
class ResidencyJob : public Job {
 public:
  ResidencyJob() : Job(ResidencySyscall()) {}

  FdRef file;
  ByteRange range;

 protected:
  Slice Step() override {
    SysResult r = QueryResidency(file, range.offset, range.length, &residency_);
    return r.ok() ? Slice::kDone : Fail(r);
  }

  Napi::Value Value(Napi::Env env) override { return ResidencyValue(env, residency_); }

 private:
  struct Residency residency_;
};

}  // namespace

// residency(fd, offset, length, id) -> Promise<object> | {errno, syscall}
// length -1: to the end of the file.
Napi::Value Binding::Residency(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t offset, length;
  uint32_t id;
  if (!ArgFd(info, 0, &fd) || !ArgInt64(info, 1, &offset) || !ArgInt64(info, 2, &length) ||
      !ArgJobId(info, 3, &id))
    return Napi::Value();
  std::unique_ptr<ResidencyJob> job(new ResidencyJob());
  SysResult r = job->file.Open(fd, FdUse::kReadFile, ResidencySyscall(), false, &pinned);
  if (r.ok()) r = ResolveRange(job->file, offset, length, ResidencySyscall(), &job->range);
  if (!r.ok()) return SysErrorValue(env, r);
  job->id = id;
  job->traced = info.Length() > 4 && info[4].ToBoolean().Value();  // see Job::traced
  return queue->Submit(env, job.release());
}

// residencySync(fd, offset, length) -> object | {errno, syscall}: the job
// residency() would queue, run on the calling thread.
Napi::Value Binding::ResidencySync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t offset, length;
  if (!ArgFd(info, 0, &fd) || !ArgInt64(info, 1, &offset) || !ArgInt64(info, 2, &length))
    return Napi::Value();
  ResidencyJob job;  // synchronous on the JS thread: no duplicate needed
  SysResult r = job.file.Inspect(fd, FdUse::kReadFile, ResidencySyscall());
  if (r.ok()) r = ResolveRange(job.file, offset, length, ResidencySyscall(), &job.range);
  if (!r.ok()) return SysErrorValue(env, r);
  job.RunToCompletion();
  return job.Outcome(env);
}

// advise(fd, offset, length, advice) -> undefined | {errno, syscall}
// advice: 0 normal, 1 sequential, 2 random, 3 willneed, 4 dontneed, 5 noreuse.
// length 0 means to the end of the file, as for posix_fadvise itself.
Napi::Value Binding::Advise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static const int kAdvice[] = {POSIX_FADV_NORMAL,   POSIX_FADV_SEQUENTIAL, POSIX_FADV_RANDOM,
                                POSIX_FADV_WILLNEED, POSIX_FADV_DONTNEED,   POSIX_FADV_NOREUSE};
  int fd;
  int64_t offset, length, advice;
  if (!ArgFd(info, 0, &fd) || !ArgInt64(info, 1, &offset) || !ArgInt64(info, 2, &length) ||
      !ArgInt64(info, 3, &advice))
    return Napi::Value();
  if (advice < 0 || advice > 5) {
    NAPI_THROW(Napi::RangeError::New(env, "pagewarm: bad advice"), Napi::Value());
  }
  int err = fd == kNoFd ? EBADF : posix_fadvise(fd, offset, length, kAdvice[advice]);
  if (err != 0) return SysErrorValue(env, SysResult::Fail(err, "posix_fadvise"));
  return env.Undefined();
}

}  // namespace pagewarm
