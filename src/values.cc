#include "values.h"

#include <errno.h>

namespace pagewarm {

Napi::Value CountValue(Napi::Env env, int64_t n) {
  return Napi::Number::New(env, static_cast<double>(n));
}

Napi::Value SysErrorValue(Napi::Env env, const SysResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("errno", Napi::Number::New(env, r.err));
  o.Set("syscall", Napi::String::New(env, r.syscall));
  return o;
}

Napi::Value CancelledValue(Napi::Env env, const char* syscall) {
  Napi::Object o = SysErrorValue(env, SysResult::Fail(ECANCELED, syscall)).As<Napi::Object>();
  o.Set("aborted", Napi::Boolean::New(env, true));
  return o;
}

Napi::Value WithBytesSent(Napi::Value reason, int64_t sent) {
  reason.As<Napi::Object>().Set("bytesSent", CountValue(reason.Env(), sent));
  return reason;
}

Napi::Value ResidencyValue(Napi::Env env, const Residency& r) {
  static const char* kSources[] = {"cachestat", "mincore", "unknown"};
  auto num = [&](int64_t v) -> Napi::Value {
    if (v < 0) return env.Null();
    return CountValue(env, v);
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

Napi::Value StatsValue(Napi::Env env, const StatsCounters& c, const PoolStats& p,
                       int64_t chunk_size) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("warmedBytes", CountValue(env, c.warmed_bytes.load()));
  o.Set("fastPathHits", CountValue(env, c.fast_path_hits.load()));
  o.Set("sendfileChunks", CountValue(env, c.sendfile_chunks.load()));
  o.Set("fallbackReads", CountValue(env, c.fallback_reads.load()));
  o.Set("directReopens", CountValue(env, c.direct_reopens.load()));
  o.Set("inlineSends", CountValue(env, c.inline_sends.load()));
  o.Set("fromDiskBytes", CountValue(env, c.from_disk_bytes.load()));
  o.Set("jobs", CountValue(env, c.jobs.load()));
  o.Set("queuedMs", Napi::Number::New(env, static_cast<double>(c.queued_ns.load()) / 1e6));
  o.Set("queued", CountValue(env, p.queued));
  o.Set("active", CountValue(env, p.active));
  o.Set("waiting", CountValue(env, p.waiting));
  o.Set("threads", CountValue(env, p.threads));
  o.Set("configuredThreads", CountValue(env, p.target));
  o.Set("chunkSize", CountValue(env, chunk_size));
  return o;
}

Napi::Value CapabilitiesValue(Napi::Env env, bool cachestat, int64_t page_size) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("cachestat", Napi::Boolean::New(env, cachestat));
  o.Set("pageSize", CountValue(env, page_size));
  // What the native binding always does; the portable fallback answers false.
  o.Set("zeroCopySend", Napi::Boolean::New(env, true));
  o.Set("nowaitReads", Napi::Boolean::New(env, true));
  return o;
}

Napi::Value FileOutcomesValue(Napi::Env env, const std::vector<FileOutcome>& outcomes) {
  size_t n = outcomes.size();
  size_t pairs = 0;
  for (const FileOutcome& o : outcomes) pairs += o.ranges.size();
  Napi::Float64Array data = Napi::Float64Array::New(env, n * kFileOutcomeFields);
  Napi::Float64Array ranges = Napi::Float64Array::New(env, pairs);
  Napi::Array syscalls = Napi::Array::New(env, n);
  double* d = data.Data();
  double* r = ranges.Data();
  for (size_t i = 0; i < n; i++) {
    const FileOutcome& o = outcomes[i];
    double* f = d + i * kFileOutcomeFields;
    f[0] = o.err;
    f[1] = static_cast<double>(o.size);
    f[2] = static_cast<double>(o.bytes);
    f[3] = static_cast<double>(o.dev);
    f[4] = static_cast<double>(o.ino >> 32);
    f[5] = static_cast<double>(o.ino & 0xffffffffu);
    f[6] = static_cast<double>(o.pages);
    f[7] = static_cast<double>(o.resident_before);
    f[8] = static_cast<double>(o.resident_after);
    f[9] = static_cast<double>(static_cast<int>(o.source));
    f[10] = static_cast<double>(o.mtime_sec);
    f[11] = static_cast<double>(o.mtime_nsec);
    f[12] = static_cast<double>(o.read_bytes);
    f[13] = o.stopped ? 1 : 0;
    f[14] = static_cast<double>(o.ranges.size() / 2);
    for (int64_t x : o.ranges) *r++ = static_cast<double>(x);
    if (o.err > 0) syscalls.Set(static_cast<uint32_t>(i), o.syscall);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("data", data);
  o.Set("syscalls", syscalls);
  o.Set("ranges", ranges);
  return o;
}

}  // namespace pagewarm
