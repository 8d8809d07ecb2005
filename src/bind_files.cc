// files: warm, residency or evict many files by path in one job, one settle
// per batch (see files.h for the work on each file).
#include <memory>
#include <string>
#include <vector>

#include "addon.h"
#include "args.h"
#include "files.h"
#include "pool.h"
#include "values.h"

namespace pagewarm {
namespace {

// Files finished in one slice at most, when none of them needs reading:
// a slice stays short, so other jobs are not held up behind a batch.
constexpr int kFilesPerSlice = 32;

const char* FilesSyscall(FilesOp op) {
  return op == FilesOp::kWarm ? "sendfile" : op == FilesOp::kEvict ? "posix_fadvise" : "open";
}

// A batch of paths, worked on in order. A file being warmed keeps its
// descriptor across slices, one chunk a slice.
class FilesJob : public Job {
 public:
  FilesJob(FilesOp op, const TestFlags& flags) : Job(FilesSyscall(op)), op_(op) {
    warm_.read_fallback = flags.force_read_fallback;
  }

  std::vector<std::string> paths;
  FilesRules rules;

 protected:
  Slice Step() override {
    for (int n = 0; n < kFilesPerSlice && next_ < paths.size(); n++) {
      if (!in_progress_) {
        outcomes_.emplace_back();
        if (task_.Begin(paths[next_], op_, rules, &outcomes_.back())) {
          task_.End();
          next_++;
          continue;
        }
        in_progress_ = true;
      }
      // One chunk of the file being warmed, then the slice ends.
      if (task_.Continue(Pool::Get().chunk_size(), &warm_, &outcomes_.back())) {
        task_.End();
        in_progress_ = false;
        next_++;
      }
      return next_ < paths.size() ? Slice::kMore : Slice::kDone;
    }
    return next_ < paths.size() ? Slice::kMore : Slice::kDone;
  }

  Napi::Value Value(Napi::Env env) override { return FileOutcomesValue(env, outcomes_); }

 private:
  FilesOp op_;
  WarmState warm_;
  FileTask task_;
  bool in_progress_ = false;
  size_t next_ = 0;
  std::vector<FileOutcome> outcomes_;
};

}  // namespace

// files(op, paths, offset, length, maxSize, flags, id)
//   -> Promise<{ data: Float64Array, syscalls: string[] }> | {errno, syscall}
// op: 0 warm, 1 residency, 2 evict. flags: 1 follow symbolic links, 2 take
// block devices. maxSize -1: no limit. One outcome per path, in order (see
// FileOutcomesValue).
Napi::Value Binding::Files(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t op, offset, length, max_size, flags;
  uint32_t id;
  if (!ArgInt64(info, 0, &op) || !ArgInt64(info, 2, &offset) || !ArgInt64(info, 3, &length) ||
      !ArgInt64(info, 4, &max_size) || !ArgInt64(info, 5, &flags) || !ArgJobId(info, 6, &id))
    return Napi::Value();
  if (op < 0 || op > 2) NAPI_THROW(Napi::RangeError::New(env, "pagewarm: bad op"), Napi::Value());
  if (offset < 0) {
    return SysErrorValue(env, SysResult::Fail(EINVAL, FilesSyscall(static_cast<FilesOp>(op))));
  }
  if (!info[1].IsArray()) {
    NAPI_THROW(Napi::TypeError::New(env, "pagewarm: paths must be an array"), Napi::Value());
  }
  std::unique_ptr<FilesJob> job(new FilesJob(static_cast<FilesOp>(op), test_flags));
  job->rules.offset = offset;
  job->rules.length = length;
  job->rules.max_size = max_size;
  job->rules.follow = (flags & 1) != 0;
  job->rules.block_devices = (flags & 2) != 0;
  Napi::Array paths = info[1].As<Napi::Array>();
  uint32_t count = paths.Length();
  job->paths.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = paths.Get(i);
    if (!v.IsString()) {
      NAPI_THROW(Napi::TypeError::New(env, "pagewarm: paths must be strings"), Napi::Value());
    }
    job->paths.push_back(v.As<Napi::String>().Utf8Value());
  }
  job->id = id;
  return queue->Submit(env, job.release());
}

}  // namespace pagewarm
