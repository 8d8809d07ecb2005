// Many files by path: the work of warmFiles, residency and eviction of many
// files, snapshots and restores, one file at a time, on pagewarm's threads.
// Each file is opened here (never on the JS thread or libuv's pool),
// described with fstat, worked on and closed again; what happened is one
// FileOutcome.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fd_ref.h"
#include "residency.h"
#include "sys_result.h"
#include "warm.h"

namespace pagewarm {

enum class FilesOp {
  kWarm = 0,       // read every page of the range
  kResidency = 1,  // how much of the range is resident
  kEvict = 2,      // drop the range's clean pages
  kMap = 3,        // which pages of the whole file are resident (snapshot)
  kRestore = 4,    // read the listed pages that are not resident, if the file is unchanged
};

// Bytes that may still be read from the disk, shared by every job of one
// call (warmFiles, restore) and lowered by JS as memory fills. Any thread.
struct Budget {
  std::atomic<int64_t> used{0};
  std::atomic<int64_t> limit{INT64_MAX};
  // Takes `bytes` from the budget, or nothing and false when they do not fit.
  bool Reserve(int64_t bytes) {
    int64_t now = used.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    if (now <= limit.load(std::memory_order_relaxed)) return true;
    used.fetch_sub(bytes, std::memory_order_relaxed);
    return false;
  }
};

// How the files are opened and which are taken.
struct FilesRules {
  int64_t offset = 0;
  int64_t length = -1;          // -1: to the end of each file
  int64_t max_size = -1;        // files larger than this are skipped; -1: no limit
  bool follow = true;           // follow a final symbolic link (else ELOOP)
  bool block_devices = false;   // take block devices too (else EINVAL)
  std::shared_ptr<Budget> budget;  // null: no limit
};

// What a restore expects of a file, and the pages it wants resident.
struct FileSpec {
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t size = 0;
  int64_t mtime_sec = 0;
  int64_t mtime_nsec = 0;
  std::vector<int64_t> ranges;  // (first page, pages) pairs
};

// err: 0, a positive errno (with syscall), or one of these.
constexpr int kSkippedTooLarge = -1;
constexpr int kChanged = -2;  // a restore's file is not the one snapshotted

// What happened to one file.
struct FileOutcome {
  int err = 0;
  const char* syscall = "";
  int64_t size = 0;    // the file's size (a block device's bytes)
  int64_t bytes = 0;   // the range, clamped to the size
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t mtime_sec = 0;
  int64_t mtime_nsec = 0;
  int64_t pages = 0;
  int64_t resident_before = -1;  // -1: the kernel would not say
  int64_t resident_after = -1;
  int64_t read_bytes = 0;        // warm, restore: bytes not resident that were read
  bool stopped = false;          // the budget ran out during (or before) this file
  ResidencySource source = ResidencySource::kUnknown;
  std::vector<int64_t> ranges;   // map: resident (first page, pages) pairs
};

// One file in progress: opened and described by Begin(), then advanced by
// Continue() one chunk at a time (warming), until it reports done.
class FileTask {
 public:
  // Opens `path` and does everything but the reads. `spec`: a restore's
  // expectations (else null). Returns true when the file is finished
  // (failed, skipped, or nothing left to read).
  bool Begin(const std::string& path, FilesOp op, const FilesRules& rules, const FileSpec* spec,
             FileOutcome* out);
  // Reads the next chunk (at most `chunk` bytes). Returns true when done.
  bool Continue(int64_t chunk, WarmState* state, FileOutcome* out);
  // Lets go of the file (closes it).
  void End() {
    file_.reset();
    read_ = 0;
  }
  // Bytes read so far of the file in progress (for progress reports).
  int64_t read() const { return read_; }

 private:
  // Moves to the next byte range that needs reading, reserving its bytes
  // from the budget. Returns false when none is left (or the budget ran out).
  bool NextRange(FileOutcome* out);

  std::unique_ptr<FdRef> file_;
  const FilesRules* rules_ = nullptr;
  bool restore_ = false;
  std::vector<int64_t> pending_;  // byte ranges (offset, length) still to read
  size_t next_range_ = 0;
  int64_t pos_ = 0;   // in the current range
  int64_t left_ = 0;  // of the current range
  int64_t range_read_ = 0;  // bytes the current range reads from the disk (its estimate)
  int64_t read_ = 0;        // bytes read of this file so far
};

}  // namespace pagewarm
