// The addon on platforms other than Linux: it loads and says so, and the
// TypeScript fallback (lib/fallback.ts) serves the whole API by copying.
#include <napi.h>

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("unsupported", Napi::Boolean::New(env, true));
  return exports;
}

NODE_API_MODULE(pagewarm, Init)
