// files: warm, residency, evict, map or restore many files by path in one
// job, one settle per batch (see files.h for the work on each file); and the
// budget several of those jobs share.
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
  switch (op) {
    case FilesOp::kWarm:
    case FilesOp::kRestore:
      return "sendfile";
    case FilesOp::kEvict:
      return "posix_fadvise";
    default:
      return "open";
  }
}

// A batch of paths, worked on in order. A file being read keeps its
// descriptor across slices, one chunk a slice. Once the budget runs out the
// remaining files are not opened (their outcomes say `stopped`).
class FilesJob : public Job {
 public:
  FilesJob(FilesOp op, const TestFlags& flags) : Job(FilesSyscall(op)), op_(op) {
    warm_.read_fallback = flags.force_read_fallback;
    // A restore's pages are for later use: read, so they count as used (see WarmState).
    warm_.mark_accessed = op == FilesOp::kRestore;
  }

  std::vector<std::string> paths;
  std::vector<FileSpec> specs;  // restore: one per path
  FilesRules rules;

 protected:
  Slice Step() override {
    for (int n = 0; n < kFilesPerSlice && next_ < paths.size(); n++) {
      if (!in_progress_) {
        outcomes_.emplace_back();
        FileOutcome* out = &outcomes_.back();
        if (stopped_) {
          out->stopped = true;
          next_++;
          continue;
        }
        const FileSpec* spec = specs.empty() ? nullptr : &specs[next_];
        if (task_.Begin(paths[next_], op_, rules, spec, out)) {
          Finish(out);
          continue;
        }
        in_progress_ = true;
      }
      // One chunk of the file being read, then the slice ends.
      if (task_.Continue(Pool::Get().chunk_size(), &warm_, &outcomes_.back())) {
        in_progress_ = false;
        Finish(&outcomes_.back());
      } else {
        Progress(done_bytes_ + task_.read(), from_disk_bytes_);
      }
      break;
    }
    return next_ < paths.size() ? Slice::kMore : Slice::kDone;
  }

  Napi::Value Value(Napi::Env env) override { return FileOutcomesValue(env, outcomes_); }

 private:
  void Finish(FileOutcome* out) {
    task_.End();
    if (out->stopped) stopped_ = true;
    next_++;
    if (out->err == 0) {
      done_bytes_ += out->bytes;
      from_disk_bytes_ += out->read_bytes;
      Progress(done_bytes_, from_disk_bytes_);
    }
  }
  int64_t done_bytes_ = 0;
  int64_t from_disk_bytes_ = 0;

  FilesOp op_;
  WarmState warm_;
  FileTask task_;
  bool in_progress_ = false;
  bool stopped_ = false;
  size_t next_ = 0;
  std::vector<FileOutcome> outcomes_;
};

// A Budget held by JS: an External owning one reference to it.
Napi::Value BudgetValue(Napi::Env env, std::shared_ptr<Budget> budget) {
  auto* held = new std::shared_ptr<Budget>(std::move(budget));
  return Napi::External<std::shared_ptr<Budget>>::New(
      env, held, [](Napi::Env, std::shared_ptr<Budget>* b) { delete b; });
}

// The Budget behind an External from budget(), or null (a JS exception pending).
std::shared_ptr<Budget> ArgBudget(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsExternal()) {
    NAPI_THROW(Napi::TypeError::New(info.Env(), "pagewarm: expected a budget"), nullptr);
  }
  return *info[i].As<Napi::External<std::shared_ptr<Budget>>>().Data();
}

// Reads a restore's specs: per path [dev, ino high, ino low, size, mtime s,
// mtime ns, n, then n (first page, pages) pairs].
bool ReadSpecs(const Napi::Env& env, const Napi::Value& v, size_t count, std::vector<FileSpec>* out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    NAPI_THROW(Napi::TypeError::New(env, "pagewarm: specs must be a Float64Array"), false);
  }
  Napi::Float64Array a = v.As<Napi::Float64Array>();
  const double* d = a.Data();
  size_t n = a.ElementLength(), at = 0;
  out->resize(count);
  for (size_t i = 0; i < count; i++) {
    if (at + 7 > n) NAPI_THROW(Napi::RangeError::New(env, "pagewarm: specs too short"), false);
    FileSpec& s = (*out)[i];
    s.dev = static_cast<uint64_t>(d[at]);
    s.ino = (static_cast<uint64_t>(d[at + 1]) << 32) | static_cast<uint64_t>(d[at + 2]);
    s.size = static_cast<int64_t>(d[at + 3]);
    s.mtime_sec = static_cast<int64_t>(d[at + 4]);
    s.mtime_nsec = static_cast<int64_t>(d[at + 5]);
    size_t pairs = static_cast<size_t>(d[at + 6]);
    at += 7;
    if (at + 2 * pairs > n) NAPI_THROW(Napi::RangeError::New(env, "pagewarm: specs too short"), false);
    s.ranges.assign(d + at, d + at + 2 * pairs);
    at += 2 * pairs;
  }
  return true;
}

}  // namespace

// files(op, paths, offset, length, maxSize, flags, id, budget?, specs?, traced?)
//   -> Promise<{ data, syscalls, ranges }> | {errno, syscall}
// (traced: Promise<{ value: that, fromDisk, queuedMs }>, see Job::traced)
// op: 0 warm, 1 residency, 2 evict, 3 map, 4 restore. flags: 1 follow
// symbolic links, 2 take block devices. maxSize -1: no limit. budget: an
// External from budget(), or undefined. specs (restore): see ReadSpecs. One
// outcome per path, in order (see FileOutcomesValue).
Napi::Value Binding::Files(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t op, offset, length, max_size, flags;
  uint32_t id;
  if (!ArgInt64(info, 0, &op) || !ArgInt64(info, 2, &offset) || !ArgInt64(info, 3, &length) ||
      !ArgInt64(info, 4, &max_size) || !ArgInt64(info, 5, &flags) || !ArgJobId(info, 6, &id))
    return Napi::Value();
  if (op < 0 || op > 4) NAPI_THROW(Napi::RangeError::New(env, "pagewarm: bad op"), Napi::Value());
  FilesOp files_op = static_cast<FilesOp>(op);
  if (offset < 0) return SysErrorValue(env, SysResult::Fail(EINVAL, FilesSyscall(files_op)));
  if (!info[1].IsArray()) {
    NAPI_THROW(Napi::TypeError::New(env, "pagewarm: paths must be an array"), Napi::Value());
  }
  std::unique_ptr<FilesJob> job(new FilesJob(files_op, test_flags));
  job->rules.offset = offset;
  job->rules.length = length;
  job->rules.max_size = max_size;
  job->rules.follow = (flags & 1) != 0;
  job->rules.block_devices = (flags & 2) != 0;
  if (info.Length() > 7 && !info[7].IsUndefined()) {
    job->rules.budget = ArgBudget(info, 7);
    if (!job->rules.budget) return Napi::Value();
  }
  Napi::Array paths = info[1].As<Napi::Array>();
  uint32_t count = paths.Length();
  if (files_op == FilesOp::kRestore && !ReadSpecs(env, info[8], count, &job->specs)) return Napi::Value();
  job->paths.reserve(count);
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = paths.Get(i);
    if (!v.IsString()) {
      NAPI_THROW(Napi::TypeError::New(env, "pagewarm: paths must be strings"), Napi::Value());
    }
    job->paths.push_back(v.As<Napi::String>().Utf8Value());
  }
  job->id = id;
  job->traced = info.Length() > 9 && info[9].ToBoolean().Value();
  return queue->Submit(env, job.release());
}

// budget(limit) -> External: bytes the jobs given it may read from the disk.
Napi::Value Binding::NewBudget(const Napi::CallbackInfo& info) {
  int64_t limit;
  if (!ArgInt64(info, 0, &limit)) return Napi::Value();
  auto budget = std::make_shared<Budget>();
  budget->limit.store(limit);
  return BudgetValue(info.Env(), std::move(budget));
}

// budgetLimit(budget, limit?) -> bytes read so far. With a limit, sets it
// first (a lower limit stops the jobs at their next file or range).
Napi::Value Binding::BudgetLimit(const Napi::CallbackInfo& info) {
  std::shared_ptr<Budget> budget = ArgBudget(info, 0);
  if (!budget) return Napi::Value();
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    int64_t limit;
    if (!ArgInt64(info, 1, &limit)) return Napi::Value();
    budget->limit.store(limit);
  }
  return CountValue(info.Env(), budget->used.load());
}

}  // namespace pagewarm
