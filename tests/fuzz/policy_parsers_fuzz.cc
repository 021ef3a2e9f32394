// libFuzzer target for the policy's name parsers (dataplane/policy/name_parsers.h). Input: one
// selector byte, one split byte, then the payload. Oracles beyond "no memory error": a name found
// is lower-case and valid; a final answer (Found, NotPresent, Malformed) on a prefix of the
// payload is the answer on the whole payload (the caller accumulates segments and stops at the
// first final answer, so a later segment must not change it); a pattern accepted by
// valid_name_pattern matches the name made from it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "dataplane/policy/name_parsers.h"

namespace {

using eipgate::policy::NameStatus;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "policy_parsers_fuzz oracle failed: %s\n", what);
  std::abort();
}

void check_name(NameStatus s, const std::string& name) {
  if (s != NameStatus::Found) return;
  if (!eipgate::policy::valid_host_name(name)) fail("found an invalid name");
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') fail("found name not lower-case");
  }
  if (name.back() == '.') fail("found name keeps its trailing dot");
}

using Parser = NameStatus (*)(const uint8_t*, size_t, std::string*);

void check_parser(Parser parse, const uint8_t* data, size_t len, size_t split) {
  std::string full_name;
  const NameStatus full = parse(data, len, &full_name);
  check_name(full, full_name);
  std::string part_name;
  const NameStatus part = parse(data, split, &part_name);
  check_name(part, part_name);
  if (part != NameStatus::NeedMore) {
    if (part != full) fail("a final answer on a prefix changed with more data");
    if (part == NameStatus::Found && part_name != full_name)
      fail("the name changed with more data");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t selector = data[0];
  const uint8_t split_byte = data[1];
  data += 2;
  size -= 2;
  const size_t split = size == 0 ? 0 : (size * split_byte) / 255;
  switch (selector % 3) {
    case 0:
      check_parser(eipgate::policy::parse_tls_sni, data, size, split);
      break;
    case 1:
      check_parser(eipgate::policy::parse_http_host, data, size, split);
      break;
    default: {
      // Pattern and host from the payload, split at the first NUL.
      const std::string_view all(reinterpret_cast<const char*>(data), size);
      const size_t nul = all.find('\0');
      const std::string_view pattern = all.substr(0, nul);
      const std::string_view host =
          nul == std::string_view::npos ? std::string_view() : all.substr(nul + 1);
      std::string why;
      const bool ok = eipgate::policy::valid_name_pattern(pattern, &why);
      if (!ok && why.empty()) fail("a rejected pattern has no reason");
      (void)eipgate::policy::name_matches(pattern, host);
      if (ok && pattern.front() != '*' && !eipgate::policy::name_matches(pattern, pattern)) {
        fail("an exact pattern does not match itself");
      }
      if (ok && pattern.front() == '*') {
        const std::string sub = "x" + std::string(pattern.substr(1));
        if (!eipgate::policy::name_matches(pattern, sub)) fail("a wildcard misses x.<suffix>");
      }
      break;
    }
  }
  return 0;
}
