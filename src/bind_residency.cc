// residency / residencySync / advise.
#include <fcntl.h>

#include <memory>

#include "addon.h"
#include "residency.h"

namespace pagewarm {
namespace {

const char* ResidencySyscall() { return HaveCachestat() ? "cachestat" : "mincore"; }

Napi::Value ResidencyValue(Napi::Env env, const Residency& r) {
  static const char* kSources[] = {"cachestat", "mincore", "unknown"};
  auto num = [&](int64_t v) -> Napi::Value {
    if (v < 0) return env.Null();
    return Napi::Number::New(env, static_cast<double>(v));
  };
  bool known = r.source != ResidencySource::kUnknown;
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytes", num(r.bytes));
  o.Set("pages", num(r.pages));
  o.Set("resident", known ? num(r.resident) : env.Null());
  o.Set("dirty", num(r.dirty));
  o.Set("writeback", num(r.writeback));
  o.Set("evicted", num(r.evicted));
  o.Set("recentlyEvicted", num(r.recently_evicted));
  o.Set("source", Napi::String::New(env, kSources[static_cast<int>(r.source)]));
  return o;
}

class ResidencyJob : public Job {
 public:
  Slice RunSlice() override {
    if (cancelled()) {
      aborted_ = true;
      return Slice::kDone;
    }
    result_ = QueryResidency(file, offset, length, &residency_);
    return Slice::kDone;
  }

 protected:
  Napi::Value Result(Napi::Env env, bool* rejected) override {
    *rejected = aborted_ || !result_.ok();
    if (aborted_) return CancelledValue(env, ResidencySyscall());
    if (!result_.ok()) return SysErrorValue(env, result_);
    return ResidencyValue(env, residency_);
  }

 public:
  FileRef file;
  int64_t offset = 0;
  int64_t length = 0;

 private:
  Residency residency_;
  SysResult result_;
  bool aborted_ = false;
};

}  // namespace

// residency(fd, offset, length, id) -> Promise<object> | {errno, syscall}
// length -1: to the end of the file.
Napi::Value Binding::Residency(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, offset, length, id;
  if (!ArgInt64(info, 0, &fd) || !ArgInt64(info, 1, &offset) ||
      !ArgInt64(info, 2, &length) || !ArgInt64(info, 3, &id))
    return Napi::Value();
  std::unique_ptr<ResidencyJob> job(new ResidencyJob());
  SysResult r = job->file.Open(fd, ResidencySyscall(), false);
  if (r.ok() && offset < 0) r = SysResult::Fail(EINVAL, ResidencySyscall());
  if (!r.ok()) return SysErrorValue(env, r);
  job->id = static_cast<uint32_t>(id);
  job->offset = offset;
  job->length = length < 0 ? INT64_MAX - offset : length;  // offset >= 0: no overflow
  return queue->Submit(env, job.release());
}

// residencySync(fd, offset, length) -> object | {errno, syscall}
Napi::Value Binding::ResidencySync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, offset, length;
  if (!ArgInt64(info, 0, &fd) || !ArgInt64(info, 1, &offset) || !ArgInt64(info, 2, &length))
    return Napi::Value();
  FileRef file;  // synchronous on the JS thread: no duplicate needed
  SysResult r = file.Inspect(fd, ResidencySyscall());
  if (r.ok() && offset < 0) r = SysResult::Fail(EINVAL, ResidencySyscall());
  if (!r.ok()) return SysErrorValue(env, r);
  struct Residency res;
  r = QueryResidency(file, offset, length < 0 ? INT64_MAX - offset : length, &res);
  if (!r.ok()) return SysErrorValue(env, r);
  return ResidencyValue(env, res);
}

// advise(fd, offset, length, advice) -> undefined | {errno, syscall}
// advice: 0 normal, 1 sequential, 2 random, 3 willneed, 4 dontneed, 5 noreuse.
// length 0 means to the end of the file, as for posix_fadvise itself.
Napi::Value Binding::Advise(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static const int kAdvice[] = {POSIX_FADV_NORMAL,   POSIX_FADV_SEQUENTIAL,
                                POSIX_FADV_RANDOM,   POSIX_FADV_WILLNEED,
                                POSIX_FADV_DONTNEED, POSIX_FADV_NOREUSE};
  int64_t fd, offset, length, advice;
  if (!ArgInt64(info, 0, &fd) || !ArgInt64(info, 1, &offset) ||
      !ArgInt64(info, 2, &length) || !ArgInt64(info, 3, &advice))
    return Napi::Value();
  if (advice < 0 || advice > 5) {
    NAPI_THROW(Napi::RangeError::New(env, "pagewarm: bad advice"), Napi::Value());
  }
  int err = FdInRange(fd) ? posix_fadvise(static_cast<int>(fd), offset, length, kAdvice[advice]) : EBADF;
  if (err != 0) return SysErrorValue(env, SysResult::Fail(err, "posix_fadvise"));
  return env.Undefined();
}

}  // namespace pagewarm
