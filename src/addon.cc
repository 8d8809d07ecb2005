#include "addon.h"

#include <cmath>

#include "pool.h"
#include "residency.h"
#include "warm.h"

namespace pagewarm {

bool ArgInt64(const Napi::CallbackInfo& info, size_t i, int64_t* out) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) {
    Napi::TypeError::New(info.Env(), "pagewarm: expected a number").ThrowAsJavaScriptException();
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) > 9007199254740991.0) {
    Napi::RangeError::New(info.Env(), "pagewarm: expected a safe integer").ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
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

Binding::Binding(Napi::Env env, Napi::Object exports) {
  queue = EnvQueue::Create(env);
  DefineAddon(exports, {
      InstanceMethod("warm", &Binding::Warm),
      InstanceMethod("warmSync", &Binding::WarmSync),
      InstanceMethod("residency", &Binding::Residency),
      InstanceMethod("residencySync", &Binding::ResidencySync),
      InstanceMethod("advise", &Binding::Advise),
      InstanceMethod("readCached", &Binding::ReadCached),
      InstanceMethod("revalidate", &Binding::Revalidate),
      InstanceMethod("send", &Binding::Send),
      InstanceMethod("sendSync", &Binding::SendSync),
      InstanceMethod("openFile", &Binding::OpenFile),
      InstanceMethod("pin", &Binding::Pin),
      InstanceMethod("unpin", &Binding::Unpin),
      InstanceMethod("cancel", &Binding::Cancel),
      InstanceMethod("configure", &Binding::Configure),
      InstanceMethod("stats", &Binding::Stats),
      InstanceMethod("chunkSize", &Binding::ChunkSize),
      InstanceMethod("capabilities", &Binding::Capabilities),
      InstanceMethod("setTestFlags", &Binding::SetTestFlags),
  });
}

// cancel(id): the job stops at its next slice and rejects as aborted.
Napi::Value Binding::Cancel(const Napi::CallbackInfo& info) {
  int64_t id;
  if (!ArgInt64(info, 0, &id)) return Napi::Value();
  queue->Cancel(static_cast<uint32_t>(id));
  Pool::Get().Nudge();
  return info.Env().Undefined();
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
  Napi::Env env = info.Env();
  WarmCounters& c = Counters();
  PoolStats p = Pool::Get().Stats();
  auto num = [&](int64_t v) { return Napi::Number::New(env, static_cast<double>(v)); };
  Napi::Object o = Napi::Object::New(env);
  o.Set("warmedBytes", num(c.warmed_bytes.load()));
  o.Set("fastPathHits", num(c.fast_path_hits.load()));
  o.Set("sendfileChunks", num(c.sendfile_chunks.load()));
  o.Set("fallbackReads", num(c.fallback_reads.load()));
  o.Set("directReopens", num(c.direct_reopens.load()));
  o.Set("inlineSends", num(c.inline_sends.load()));
  o.Set("queued", num(p.queued));
  o.Set("active", num(p.active));
  o.Set("waiting", num(p.waiting));
  o.Set("threads", num(p.threads));
  o.Set("configuredThreads", num(p.target));
  o.Set("chunkSize", num(Pool::Get().chunk_size()));
  return o;
}

// chunkSize(): the pool's chunk size alone, for callers on a hot path
// (sendFile asks once per call): no object, and no pool lock, unlike stats().
Napi::Value Binding::ChunkSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Pool::Get().chunk_size()));
}

Napi::Value Binding::Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("cachestat", Napi::Boolean::New(env, HaveCachestat()));
  o.Set("pageSize", Napi::Number::New(env, static_cast<double>(PageSize())));
  // What the native binding always does; the portable fallback answers false.
  o.Set("zeroCopySend", Napi::Boolean::New(env, true));
  o.Set("nowaitReads", Napi::Boolean::New(env, true));
  return o;
}

// setTestFlags({ forceReadFallback }): test hooks, not part of the API.
Napi::Value Binding::SetTestFlags(const Napi::CallbackInfo& info) {
  if (info[0].IsObject()) {
    Napi::Object o = info[0].As<Napi::Object>();
    if (o.Has("forceReadFallback"))
      SetForceReadFallback(o.Get("forceReadFallback").ToBoolean().Value());
    if (o.Has("noNowaitReads"))
      SetNoNowaitReads(o.Get("noNowaitReads").ToBoolean().Value());
  }
  return info.Env().Undefined();
}

}  // namespace pagewarm

using pagewarm::Binding;
NODE_API_ADDON(Binding)
