#include "nats_conn.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace recmap::ship_internal {

absl::Status FromNats(natsStatus s, int jerr, std::string_view what) {
  if (s == NATS_OK) return absl::OkStatus();
  std::string msg =
      absl::StrCat(std::string(what), ": ", natsStatus_GetText(s));
  if (jerr != 0) absl::StrAppend(&msg, " (JetStream error ", jerr, ")");
  switch (s) {
    case NATS_TIMEOUT:
      return absl::DeadlineExceededError(msg);
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_NO_RESPONDERS:
    case NATS_IO_ERROR:
      return absl::UnavailableError(msg);
    case NATS_NOT_FOUND:
      return absl::NotFoundError(msg);
    default:
      if (jerr == JSStreamNotFoundErr) return absl::NotFoundError(msg);
      return absl::UnknownError(msg);
  }
}

NatsConn::~NatsConn() {
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (nc_ != nullptr) {
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
  }
}

absl::Status NatsConn::Connect(const NatsOptions& nats, jsOptions* jo) {
  url_ = nats.url;
  natsOptions* o = nullptr;
  natsStatus s = natsOptions_Create(&o);
  std::vector<std::string> urls =
      absl::StrSplit(nats.url, ',', absl::SkipWhitespace());
  std::vector<const char*> ptrs;
  for (const std::string& u : urls) ptrs.push_back(u.c_str());
  if (s == NATS_OK && ptrs.empty()) {
    natsOptions_Destroy(o);
    return absl::InvalidArgumentError("no NATS URL given");
  }
  if (s == NATS_OK)
    s = natsOptions_SetServers(o, ptrs.data(), static_cast<int>(ptrs.size()));
  if (s == NATS_OK) s = natsOptions_SetTimeout(o, nats.timeout.count());
  // Reconnect (to another node) for about one timeout, then give up.
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 200);
  if (s == NATS_OK)
    s = natsOptions_SetMaxReconnect(
        o, static_cast<int>(nats.timeout.count() / 200) + 1);
  if (s == NATS_OK) s = natsOptions_SetNoRandomize(o, true);
  if (s != NATS_OK) {
    natsOptions_Destroy(o);
    return FromNats(s, 0, absl::StrCat("bad NATS URL '", nats.url, "'"));
  }
  s = natsConnection_Connect(&nc_, o);
  natsOptions_Destroy(o);
  if (s != NATS_OK) {
    nc_ = nullptr;
    absl::Status st =
        FromNats(s, 0, absl::StrCat("cannot connect to NATS at ", nats.url));
    if (s == NATS_NO_SERVER || s == NATS_INVALID_ARG || s == NATS_ERR)
      return absl::UnavailableError(st.message());
    return st;
  }
  jsOptions defaults;
  if (jo == nullptr) {
    jsOptions_Init(&defaults);
    jo = &defaults;
  }
  jo->Wait = nats.timeout.count();
  s = natsConnection_JetStream(&js_, nc_, jo);
  if (s != NATS_OK) {
    js_ = nullptr;
    return FromNats(s, 0, "cannot open a JetStream context");
  }
  return absl::OkStatus();
}

absl::Status NatsConn::CheckStream(const std::string& stream) {
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, js_, stream.c_str(), nullptr, &jerr);
  if (si != nullptr) jsStreamInfo_Destroy(si);
  if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr)
    return absl::NotFoundError(
        absl::StrCat("JetStream stream '", stream, "' not found at ", url_));
  if (jerr == JSNotEnabledErr || jerr == JSNotEnabledForAccountErr)
    return absl::FailedPreconditionError(
        absl::StrCat("JetStream is not enabled at ", url_));
  return FromNats(s, jerr, absl::StrCat("stream '", stream, "' info"));
}

}  // namespace recmap::ship_internal
