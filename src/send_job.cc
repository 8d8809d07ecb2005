#include "send_job.h"

#include <sys/epoll.h>

#include <algorithm>

#include "pool.h"
#include "residency.h"
#include "stats.h"
#include "send_io.h"
#include "values.h"

namespace pagewarm {

Slice SendJob::Step() {
  int64_t chunk = std::min(length - done_, Pool::Get().chunk_size());
  bool eof, would_block;
  SysResult r;
  // What the send brought into the page cache came from the disk (the
  // tracing channels' fromDisk, stats().fromDiskBytes).
  int64_t read = FromDiskDuring(file, offset + done_, chunk, [&] {
    r = SendSome(out.fd(), file.fd(), offset + done_, chunk, &eof, &would_block);
  });
  done_ += r.value;
  from_disk_ += read;
  Count(Counters().from_disk_bytes, read);
  Progress(done_, from_disk_);
  if (!r.ok()) return Fail(r);
  if (eof || done_ >= length) return Slice::kDone;
  if (would_block) {
    wait_fd = out.fd();
    wait_events = EPOLLOUT;
    return Slice::kWait;
  }
  return Slice::kMore;
}

Napi::Value SendJob::Value(Napi::Env env) { return CountValue(env, sent_before + done_); }

Napi::Value SendJob::Reason(Napi::Value reason) {
  return WithBytesSent(reason, sent_before + done_);
}

}  // namespace pagewarm
