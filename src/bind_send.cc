// send / sendSync: sendfile(2) from a file to a socket or other descriptor.
//
// The async form runs a SendJob (send_job.h) on pagewarm's threads, except
// that a small range the page cache holds is first tried once from the JS
// thread (see Send). It expects a non-blocking destination (every socket
// Node owns is one). sendSync runs the same job on the calling thread.
#include <errno.h>
#include <fcntl.h>

#include <memory>

#include "addon.h"
#include "args.h"
#include "residency.h"
#include "send_io.h"
#include "send_job.h"
#include "stats.h"
#include "values.h"

namespace pagewarm {
namespace {

// Ranges up to this size whose pages are all in the page cache are sent
// from the JS thread, once, before any thread hop: see Binding::Send.
constexpr int64_t kInlineSendMax = 128 << 10;

// Both caller descriptors must be open before either is duplicated: a dup
// takes the lowest free number, which is the other argument's number if
// that one was closed, and the call would then check (or use) our own dup.
SysResult CheckOpen(int out_fd, int in_fd) {
  if (out_fd == kNoFd || in_fd == kNoFd) return SysResult::Fail(EBADF, "sendfile");
  if (fcntl(out_fd, F_GETFD) < 0 || fcntl(in_fd, F_GETFD) < 0)
    return SysResult::Fail(errno, "sendfile");
  return SysResult::Ok(0);
}

// Checks both descriptors, takes the job's own (a pinned source is shared,
// not duplicated again: one duplicate per send), and resolves the range.
SysResult Prepare(SendJob* job, int out_fd, int in_fd, int64_t offset, int64_t length,
                  const PinnedFds& pinned, ByteRange* range) {
  SysResult r = CheckOpen(out_fd, in_fd);
  if (r.ok()) r = job->out.Open(out_fd, FdUse::kWrite, "sendfile", false, &pinned);
  if (r.ok()) r = job->file.Open(in_fd, FdUse::kReadFile, "sendfile", true, &pinned);
  if (r.ok()) r = ResolveRange(job->file, offset, length, "sendfile", range);
  job->offset = range->offset;
  job->length = range->length;
  return r;
}

}  // namespace

// send(outFd, inFd, offset, length, id, traced?)
//     -> number | Promise<number> | {errno, syscall, bytesSent?}
// (traced: a queued job resolves with { value, fromDisk, queuedMs }, see Job::traced)
// A number when the answer is known on the JS thread: an empty range, one
// past the end, or a small resident range the destination took at once.
Napi::Value Binding::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int out_fd, in_fd;
  int64_t offset, length;
  uint32_t id;
  if (!ArgFd(info, 0, &out_fd) || !ArgFd(info, 1, &in_fd) || !ArgInt64(info, 2, &offset) ||
      !ArgInt64(info, 3, &length) || !ArgJobId(info, 4, &id))
    return Napi::Value();
  std::unique_ptr<SendJob> job(new SendJob());
  ByteRange range;
  SysResult r = Prepare(job.get(), out_fd, in_fd, offset, length, pinned, &range);
  if (!r.ok()) return SysErrorValue(env, r);
  // Nothing to send, or at or past the end: 0 without a thread hop.
  if (range.empty()) return CountValue(env, 0);
  // A small range the page cache holds, to a non-blocking destination, goes
  // from the JS thread with no thread hop (about 30 us of handoffs each
  // way on these machines, more than sending 64 KiB costs): the design of
  // Kafka's fix, whose network thread calls sendfile on warmed pages. The
  // destination cannot make it wait (EAGAIN ends the attempt; the rest is
  // queued as usual), and the pages are checked just before: resident, and
  // readable without waiting (cachestat alone also counts pages whose read
  // is still in flight, and sendfile would wait on those). Only pages
  // reclaimed in the microseconds between the check and the call would be
  // read from the disk here.
  if (range.in_file <= kInlineSendMax && job->out.nonblocking() &&
      ReadableWithoutWaiting(job->file.fd(), range.offset, range.in_file)) {
    Count(Counters().inline_sends);
    bool eof, would_block;
    SigpipeGuard no_sigpipe;
    r = SendSome(job->out.fd(), job->file.fd(), job->offset, job->length, &eof, &would_block);
    if (!r.ok()) {
      no_sigpipe.Saw(r);
      return WithBytesSent(SysErrorValue(env, r), r.value);
    }
    if (eof || r.value >= job->length) return CountValue(env, r.value);
    job->sent_before = r.value;
    job->offset += r.value;
    job->length -= r.value;
  }
  job->id = id;
  job->traced = info.Length() > 5 && info[5].ToBoolean().Value();
  return queue->Submit(env, job.release());
}

// sendSync(outFd, inFd, offset, length, traced?) -> number | {errno, syscall, bytesSent}
// Blocks the calling thread, also waiting out EAGAIN on a non-blocking outFd.
Napi::Value Binding::SendSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int out_fd, in_fd;
  int64_t offset, length;
  if (!ArgFd(info, 0, &out_fd) || !ArgFd(info, 1, &in_fd) || !ArgInt64(info, 2, &offset) ||
      !ArgInt64(info, 3, &length))
    return Napi::Value();
  SendJob job;
  ByteRange range;
  SysResult r = Prepare(&job, out_fd, in_fd, offset, length, pinned, &range);
  if (!r.ok()) return SysErrorValue(env, r);
  if (range.empty()) return CountValue(env, 0);
  SigpipeGuard no_sigpipe;
  job.traced = info.Length() > 4 && info[4].ToBoolean().Value();
  job.RunToCompletion();
  no_sigpipe.Saw(job.error());
  return job.Outcome(env);
}

}  // namespace pagewarm
