// Many files by path: the work of warmFiles, residency of many files and
// evictFiles, one file at a time, on pagewarm's threads. Each file is
// opened here (never on the JS thread or libuv's pool), described with
// fstat, worked on and closed again; what happened is one FileOutcome.
#pragma once
#include <cstdint>
#include <string>

#include "fd_ref.h"
#include "residency.h"
#include "sys_result.h"
#include "warm.h"

namespace pagewarm {

enum class FilesOp { kWarm = 0, kResidency = 1, kEvict = 2 };

// How the files are opened and which are taken.
struct FilesRules {
  int64_t offset = 0;
  int64_t length = -1;     // -1: to the end of each file
  int64_t max_size = -1;   // files larger than this are skipped; -1: no limit
  bool follow = true;      // follow a final symbolic link (else ELOOP)
  bool block_devices = false;  // take block devices too (else EINVAL)
};

// What happened to one file. err: 0, a positive errno (with syscall), or
// kSkippedTooLarge.
struct FileOutcome {
  int err = 0;
  const char* syscall = "";
  int64_t size = 0;    // the file's size (a block device's bytes)
  int64_t bytes = 0;   // the range, clamped to the size
  uint64_t dev = 0;
  uint64_t ino = 0;
  int64_t pages = 0;
  int64_t resident_before = -1;  // -1: the kernel would not say
  int64_t resident_after = -1;
  ResidencySource source = ResidencySource::kUnknown;
};

constexpr int kSkippedTooLarge = -1;

// One file in progress: opened and described by Begin(), then advanced by
// Continue() one chunk at a time (warming), until it reports done.
class FileTask {
 public:
  // Opens `path` and does everything but the warm-up's reads. Returns true
  // when the file is finished (failed, skipped, or nothing left to read).
  bool Begin(const std::string& path, FilesOp op, const FilesRules& rules, FileOutcome* out);
  // Warms the next chunk (at most `chunk` bytes). Returns true when done.
  bool Continue(int64_t chunk, WarmState* state, FileOutcome* out);
  // Lets go of the file (closes it).
  void End() { file_.reset(); }

 private:
  std::unique_ptr<FdRef> file_;
  int64_t offset_ = 0;
  int64_t left_ = 0;
};

}  // namespace pagewarm
