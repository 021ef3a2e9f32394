// libFuzzer target for eipgate-control's config parser (control/daemon/daemon_config.h: the
// aws:, ha: and admin: sections through the schema toolkit). Input: the file's text. Oracles
// beyond "no crash, no uncaught exception, no sanitizer report": a refusal has at least one
// "file:line: reason" line naming the file, and an accepted config has an absolute admin socket
// and a sync socket beside it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "control/daemon/daemon_config.h"

namespace {

[[noreturn]] void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "control_config_fuzz oracle failed: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return -1;  // see tests/fuzz/CMakeLists.txt: yaml-cpp's own slow inputs
  const std::string text(reinterpret_cast<const char*>(data), size);
  // yaml-cpp 0.7 loops forever on many documents with a ',' outside any flow collection ("\0,,",
  // "- \xb6,x\n,"); yaml_schema::load_document() refuses the forms found so far, and the rest are
  // the library's bug, not ours: such inputs are not explored (a naive bracket count is enough).
  int depth = 0;
  for (const char c : text) {
    if (c == '[' || c == '{') ++depth;
    if ((c == ']' || c == '}') && depth > 0) --depth;
    if (c == ',' && depth == 0) return -1;
  }
  eipgate::control::DaemonConfig config;
  std::string errors;
  const bool ok = eipgate::control::parse_daemon_config(text, "fuzz.yaml", &config, &errors);
  if (ok) {
    if (!errors.empty()) fail("accepted with errors", errors);
    if (config.dataplane_admin_socket.empty() || config.dataplane_admin_socket[0] != '/') {
      fail("accepted a relative admin socket", config.dataplane_admin_socket);
    }
    if (config.sync_socket.empty()) fail("accepted without a sync socket", text);
  } else {
    if (errors.empty()) fail("refused without a message", text);
    size_t start = 0;
    while (start <= errors.size()) {
      const size_t end = errors.find('\n', start);
      const std::string line =
          errors.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (line.rfind("fuzz.yaml:", 0) != 0) fail("an error line without the file", errors);
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  return 0;
}
