#include "addon.h"

#include "args.h"
#include "pool.h"
#include "residency.h"
#include "stats.h"
#include "values.h"

namespace pagewarm {

Binding::Binding(Napi::Env env, Napi::Object exports) {
  queue = EnvQueue::Create(env);
  DefineAddon(exports, {
                           InstanceMethod("warm", &Binding::Warm),
                           InstanceMethod("warmSync", &Binding::WarmSync),
                           InstanceMethod("residency", &Binding::Residency),
                           InstanceMethod("residencySync", &Binding::ResidencySync),
                           InstanceMethod("advise", &Binding::Advise),
                           InstanceMethod("files", &Binding::Files),
                           InstanceMethod("budget", &Binding::NewBudget),
                           InstanceMethod("budgetLimit", &Binding::BudgetLimit),
                           InstanceMethod("readCached", &Binding::ReadCached),
                           InstanceMethod("revalidate", &Binding::Revalidate),
                           InstanceMethod("send", &Binding::Send),
                           InstanceMethod("sendSync", &Binding::SendSync),
                           InstanceMethod("openFile", &Binding::OpenFile),
                           InstanceMethod("pin", &Binding::Pin),
                           InstanceMethod("unpin", &Binding::Unpin),
                           InstanceMethod("cancel", &Binding::Cancel),
                           InstanceMethod("progress", &Binding::Progress),
                           InstanceMethod("configure", &Binding::Configure),
                           InstanceMethod("stats", &Binding::Stats),
                           InstanceMethod("chunkSize", &Binding::ChunkSize),
                           InstanceMethod("capabilities", &Binding::Capabilities),
                           InstanceMethod("_testOnlySetFlags", &Binding::TestOnlySetFlags),
                       });
}

// cancel(id): the job stops at its next slice and rejects as aborted.
Napi::Value Binding::Cancel(const Napi::CallbackInfo& info) {
  uint32_t id;
  if (!ArgJobId(info, 0, &id)) return Napi::Value();
  queue->Cancel(id);
  Pool::Get().Nudge();
  return info.Env().Undefined();
}

// progress(id): [bytes done, total (-1: unknown), bytes from the disk] of a
// job in flight, or null once it is settled (or for an unknown id).
Napi::Value Binding::Progress(const Napi::CallbackInfo& info) {
  uint32_t id;
  if (!ArgJobId(info, 0, &id)) return Napi::Value();
  const Job* job = queue->Find(id);
  if (job == nullptr) return info.Env().Null();
  Napi::Array out = Napi::Array::New(info.Env(), 3);
  out.Set(0u, Napi::Number::New(info.Env(), static_cast<double>(job->progress_done())));
  out.Set(1u, Napi::Number::New(info.Env(), static_cast<double>(job->progress_total.load(std::memory_order_relaxed))));
  out.Set(2u, Napi::Number::New(info.Env(), static_cast<double>(job->progress_from_disk())));
  return out;
}

// configure(threads, chunkSize): 0 leaves a setting as it is.
Napi::Value Binding::Configure(const Napi::CallbackInfo& info) {
  int64_t threads, chunk;
  if (!ArgInt64(info, 0, &threads) || !ArgInt64(info, 1, &chunk)) return Napi::Value();
  if (threads < 0 || threads > 256 || chunk < 0) {
    NAPI_THROW(Napi::RangeError::New(info.Env(), "pagewarm: bad configuration"), Napi::Value());
  }
  if (chunk > 0) Pool::Get().SetChunkSize(chunk);
  if (threads > 0) {
    SysResult r = Pool::Get().SetThreads(static_cast<int>(threads));
    if (!r.ok()) return SysErrorValue(info.Env(), r);
  }
  return info.Env().Undefined();
}

Napi::Value Binding::Stats(const Napi::CallbackInfo& info) {
  PoolStats pool = Pool::Get().Stats();
  return StatsValue(info.Env(), Counters(), pool, Pool::Get().chunk_size());
}

// chunkSize(): the pool's chunk size alone, for callers on a hot path
// (sendFile asks once per call): no object, and no pool lock, unlike stats().
Napi::Value Binding::ChunkSize(const Napi::CallbackInfo& info) {
  return CountValue(info.Env(), Pool::Get().chunk_size());
}

Napi::Value Binding::Capabilities(const Napi::CallbackInfo& info) {
  return CapabilitiesValue(info.Env(), HaveCachestat(), PageSize());
}

// _testOnlySetFlags({ forceReadFallback?, noNowaitReads? }): for tests only,
// never API (docs/api.md does not name it, and the fallback lacks it). It
// sets this environment's TestFlags: the calling thread's, no other.
Napi::Value Binding::TestOnlySetFlags(const Napi::CallbackInfo& info) {
  if (info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    if (o.Has("forceReadFallback"))
      test_flags.force_read_fallback = o.Get("forceReadFallback").ToBoolean().Value();
    if (o.Has("noNowaitReads"))
      test_flags.no_nowait_reads = o.Get("noNowaitReads").ToBoolean().Value();
  }
  return info.Env().Undefined();
}

}  // namespace pagewarm

using pagewarm::Binding;
NODE_API_ADDON(Binding)
