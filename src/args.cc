#include "args.h"

#include <climits>
#include <cmath>

namespace pagewarm {

bool ArgInt64(const Napi::CallbackInfo& info, size_t i, int64_t* out) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) {
    Napi::TypeError::New(info.Env(), "pagewarm: expected a number").ThrowAsJavaScriptException();
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) > 9007199254740991.0) {
    Napi::RangeError::New(info.Env(), "pagewarm: expected a safe integer")
        .ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

bool ArgFd(const Napi::CallbackInfo& info, size_t i, int* out) {
  int64_t fd;
  if (!ArgInt64(info, i, &fd)) return false;
  *out = fd >= 0 && fd <= INT_MAX ? static_cast<int>(fd) : kNoFd;
  return true;
}

bool ArgJobId(const Napi::CallbackInfo& info, size_t i, uint32_t* out) {
  int64_t id;
  if (!ArgInt64(info, i, &id)) return false;
  *out = static_cast<uint32_t>(id);
  return true;
}

bool ArgString(const Napi::CallbackInfo& info, size_t i, const char* message, std::string* out) {
  if (!info[i].IsString()) {
    Napi::TypeError::New(info.Env(), message).ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::String>().Utf8Value();
  return true;
}

}  // namespace pagewarm
