#include "files.h"
#include "stats.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace pagewarm {
namespace {

bool Fail(FileOutcome* out, int err, const char* syscall) {
  out->err = err;
  out->syscall = syscall;
  return true;
}

// The resident pages of a range into *resident (-1 where the kernel would
// not say), with out's pages and source.
SysResult Query(const FdRef& file, int64_t offset, int64_t length, int64_t* resident,
                FileOutcome* out) {
  Residency r;
  SysResult q = QueryResidency(file, offset, length, &r);
  if (!q.ok()) return q;
  out->pages = r.pages;
  out->source = r.source;
  *resident = r.source == ResidencySource::kUnknown ? -1 : r.resident;
  return q;
}

}  // namespace

bool FileTask::Begin(const std::string& path, FilesOp op, const FilesRules& rules,
                     const FileSpec* spec, FileOutcome* out) {
  file_.reset();
  rules_ = &rules;
  restore_ = op == FilesOp::kRestore;
  pending_.clear();
  next_range_ = 0;
  left_ = 0;
  // A NUL inside the name would open a different, shorter one.
  if (path.find('\0') != std::string::npos) return Fail(out, ENOENT, "open");
  int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (rules.follow ? 0 : O_NOFOLLOW);
  int fd;
  do {
    fd = open(path.c_str(), flags);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Fail(out, errno, "open");
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return Fail(out, err, "fstat");
  }
  out->dev = static_cast<uint64_t>(st.st_dev);
  out->ino = static_cast<uint64_t>(st.st_ino);
  out->mtime_sec = st.st_mtim.tv_sec;
  out->mtime_nsec = st.st_mtim.tv_nsec;
  int64_t size = 0;
  int refused = 0;
  const char* refused_by = "read";  // what read or sendfile would say of it
  if (S_ISREG(st.st_mode)) {
    size = st.st_size;
  } else if (S_ISBLK(st.st_mode) && rules.block_devices && op != FilesOp::kMap &&
             op != FilesOp::kRestore) {
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
      refused = errno;
      refused_by = "ioctl";
    }
    size = static_cast<int64_t>(bytes);
  } else {
    refused = S_ISDIR(st.st_mode) ? EISDIR
              : (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) ? ESPIPE
                                                                 : EINVAL;
  }
  if (refused != 0) {
    close(fd);
    return Fail(out, refused, refused_by);
  }
  out->size = size;
  if (rules.max_size >= 0 && size > rules.max_size) {
    close(fd);
    out->err = kSkippedTooLarge;
    return true;
  }
  if (spec != nullptr && (out->dev != spec->dev || out->ino != spec->ino || size != spec->size ||
                          out->mtime_sec != spec->mtime_sec || out->mtime_nsec != spec->mtime_nsec)) {
    close(fd);
    out->err = kChanged;
    return true;
  }
  file_.reset(new FdRef());
  file_->Own(fd, st, size);

  if (op == FilesOp::kMap) {
    out->bytes = size;
    int64_t ps = PageSize();
    out->pages = (size + ps - 1) / ps;
    SysResult r = ResidentRanges(*file_, &out->ranges, &out->source);
    if (!r.ok()) return Fail(out, r.err, r.syscall);
    if (out->source == ResidencySource::kUnknown) return true;
    int64_t resident = 0;
    for (size_t i = 1; i < out->ranges.size(); i += 2) resident += out->ranges[i];
    out->resident_before = out->resident_after = resident;
    return true;
  }
  if (op == FilesOp::kRestore) {
    // Exactly the snapshot's ranges: no readahead around them on this
    // descriptor (its own open file), which would read pages nobody had.
    posix_fadvise(file_->fd(), 0, 0, POSIX_FADV_RANDOM);
    int64_t ps = PageSize();
    for (size_t i = 0; i + 1 < spec->ranges.size(); i += 2) {
      int64_t offset = spec->ranges[i] * ps;
      int64_t length = ClampRange(size, offset, spec->ranges[i + 1] * ps);
      if (length <= 0) continue;
      pending_.push_back(offset);
      pending_.push_back(length);
      out->bytes += length;
    }
    out->pages = 0;
    return !NextRange(out);
  }

  out->bytes = ClampRange(size, rules.offset, rules.length < 0 ? INT64_MAX : rules.length);
  SysResult r = Query(*file_, rules.offset, out->bytes, &out->resident_before, out);
  if (!r.ok()) return Fail(out, r.err, r.syscall);
  if (op == FilesOp::kResidency) {
    out->resident_after = out->resident_before;
    return true;
  }
  if (op == FilesOp::kEvict) {
    if (out->bytes > 0) {
      int err = posix_fadvise(file_->fd(), rules.offset, out->bytes, POSIX_FADV_DONTNEED);
      if (err != 0) return Fail(out, err, "posix_fadvise");
    }
    r = Query(*file_, rules.offset, out->bytes, &out->resident_after, out);
    if (!r.ok()) return Fail(out, r.err, r.syscall);
    return true;
  }
  // Warm: every page is read (see WarmChunk), in Continue(); what was not
  // resident counts against the budget.
  if (out->bytes == 0) {
    out->resident_after = out->resident_before < 0 ? -1 : out->pages;
    return true;
  }
  range_read_ = NotResident(out->bytes, out->pages, out->resident_before);
  if (rules.budget && !rules.budget->Reserve(range_read_)) {
    out->stopped = true;
    return true;
  }
  pos_ = rules.offset;
  left_ = out->bytes;
  return false;
}

bool FileTask::NextRange(FileOutcome* out) {
  while (next_range_ + 1 < pending_.size()) {
    int64_t offset = pending_[next_range_];
    int64_t length = pending_[next_range_ + 1];
    next_range_ += 2;
    // Only what is not resident is read (cachestat; mincore without it).
    Residency r;
    SysResult q = QueryResidency(*file_, offset, length, &r);
    if (!q.ok()) {
      Fail(out, q.err, q.syscall);
      return false;
    }
    out->pages += r.pages;
    int64_t resident = r.source == ResidencySource::kUnknown ? -1 : r.resident;
    if (resident >= r.pages) continue;
    range_read_ = NotResident(length, r.pages, resident);
    if (rules_->budget && !rules_->budget->Reserve(range_read_)) {
      out->stopped = true;
      return false;
    }
    pos_ = offset;
    left_ = length;
    return true;
  }
  return false;
}

bool FileTask::Continue(int64_t chunk, WarmState* state, FileOutcome* out) {
  bool eof = false;
  SysResult r = WarmChunk(*file_, state, pos_, std::min(chunk, left_), &eof);
  if (!r.ok()) return Fail(out, r.err, r.syscall);
  pos_ += r.value;
  left_ -= r.value;
  read_ += r.value;
  if (!eof && left_ > 0) return false;
  out->read_bytes += range_read_;
  Count(Counters().from_disk_bytes, range_read_);
  if (restore_) return !NextRange(out);
  // Every page of the range was read: resident now (a file that shrank
  // meanwhile has fewer).
  out->resident_after = out->source == ResidencySource::kUnknown ? -1 : out->pages;
  return true;
}

}  // namespace pagewarm
