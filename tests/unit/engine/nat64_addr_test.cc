// RFC 6052 address mapping: the RFC's own embedding table for every prefix length, prefix
// validation, the well-known prefix's non-global rule, strict extraction.
#include "dataplane/engine/nat64_addr.h"

#include <gtest/gtest.h>

#include "tests/unit/engine/nat64_builder.h"

namespace eipgate::testing {
namespace {

namespace n64 = engine::nat64;
using nat64b::v4;
using nat64b::v6;

n64::Prefix prefix(const char* text, uint8_t len) { return n64::Prefix{v6(text), len}; }

struct EmbedCase {
  const char* prefix;
  uint8_t len;
  const char* expected;
};

// RFC 6052 section 2.4, table 1: 192.0.2.33 under each prefix length.
constexpr EmbedCase kRfcTable[] = {
    {"2001:db8::", 32, "2001:db8:c000:221::"},
    {"2001:db8:100::", 40, "2001:db8:1c0:2:21::"},
    {"2001:db8:122::", 48, "2001:db8:122:c000:2:2100::"},
    {"2001:db8:122:300::", 56, "2001:db8:122:3c0:0:221::"},
    {"2001:db8:122:344::", 64, "2001:db8:122:344:c0:2:2100:0"},
    {"2001:db8:122:344::", 96, "2001:db8:122:344::192.0.2.33"},
};

TEST(Nat64Addr, EmbedsAndExtractsTheRfcTableForEveryLength) {
  for (const EmbedCase& c : kRfcTable) {
    SCOPED_TRACE(std::string(c.prefix) + "/" + std::to_string(c.len));
    const n64::Prefix p = prefix(c.prefix, c.len);
    ASSERT_EQ(n64::validate_prefix(p), n64::PrefixError::None);
    n64::Addr6 out{};
    ASSERT_EQ(n64::embed(p, v4("192.0.2.33"), out.data()), n64::MapError::None);
    EXPECT_EQ(out, v6(c.expected));
    uint32_t back = 0;
    ASSERT_EQ(n64::extract(p, v6(c.expected), back), n64::MapError::None);
    EXPECT_EQ(back, v4("192.0.2.33"));
  }
}

TEST(Nat64Addr, WellKnownPrefixIsTheDefaultAndMapsGlobalAddresses) {
  EXPECT_EQ(n64::kWellKnownPrefix.addr, v6("64:ff9b::"));
  EXPECT_EQ(n64::kWellKnownPrefix.len, 96);
  EXPECT_TRUE(n64::is_well_known(n64::kWellKnownPrefix));
  EXPECT_EQ(n64::validate_prefix(n64::kWellKnownPrefix), n64::PrefixError::None);
  n64::Addr6 out{};
  ASSERT_EQ(n64::embed(n64::kWellKnownPrefix, v4("93.184.216.34"), out.data()),
            n64::MapError::None);
  EXPECT_EQ(out, v6("64:ff9b::5db8:d822"));
  uint32_t back = 0;
  ASSERT_EQ(n64::extract(n64::kWellKnownPrefix, out, back), n64::MapError::None);
  EXPECT_EQ(back, v4("93.184.216.34"));
}

// RFC 6052 section 3.1: the WKP MUST NOT represent non-global IPv4 addresses; translators MUST
// drop such packets. Both directions refuse; a network-specific prefix (even RFC 8215's local-use
// 64:ff9b:1::/48 space) maps them.
TEST(Nat64Addr, WellKnownPrefixRefusesNonGlobalIpv4) {
  const char* non_global[] = {"0.1.2.3",     "10.1.2.3",       "100.64.0.1",   "100.127.255.255",
                              "127.0.0.1",   "169.254.1.1",    "172.16.0.1",   "172.31.255.255",
                              "192.0.0.8",   "192.0.2.1",      "192.88.99.1",  "192.168.1.1",
                              "198.18.0.1",  "198.19.255.255", "198.51.100.7", "203.0.113.9",
                              "224.0.0.251", "239.1.1.1",      "240.0.0.1",    "255.255.255.255"};
  const n64::Prefix nsp = prefix("64:ff9b:1::", 96);
  ASSERT_EQ(n64::validate_prefix(nsp), n64::PrefixError::None);
  for (const char* a : non_global) {
    SCOPED_TRACE(a);
    EXPECT_FALSE(n64::is_global_ipv4(ntohl(v4(a))));
    n64::Addr6 out{};
    EXPECT_EQ(n64::embed(n64::kWellKnownPrefix, v4(a), out.data()),
              n64::MapError::NonGlobalWithWkp);
    n64::Addr6 wkp = v6("64:ff9b::");
    const uint32_t raw = v4(a);
    std::memcpy(wkp.data() + 12, &raw, 4);
    uint32_t back = 0;
    EXPECT_EQ(n64::extract(n64::kWellKnownPrefix, wkp, back), n64::MapError::NonGlobalWithWkp);
    ASSERT_EQ(n64::embed(nsp, v4(a), out.data()), n64::MapError::None);
    ASSERT_EQ(n64::extract(nsp, out, back), n64::MapError::None);
    EXPECT_EQ(back, v4(a));
  }
  const char* global[] = {"1.1.1.1",        "8.8.8.8",    "100.63.255.255", "100.128.0.0",
                          "172.15.255.255", "172.32.0.0", "192.0.1.255",    "192.0.3.0",
                          "198.17.255.255", "198.20.0.0", "203.0.112.255",  "223.255.255.255"};
  for (const char* a : global) {
    SCOPED_TRACE(a);
    EXPECT_TRUE(n64::is_global_ipv4(ntohl(v4(a))));
    n64::Addr6 out{};
    EXPECT_EQ(n64::embed(n64::kWellKnownPrefix, v4(a), out.data()), n64::MapError::None);
  }
}

TEST(Nat64Addr, ValidatesPrefixes) {
  struct Case {
    const char* addr;
    uint8_t len;
    n64::PrefixError want;
  };
  const Case cases[] = {
      {"2001:db8::", 32, n64::PrefixError::None},
      {"64:ff9b:1::", 48, n64::PrefixError::None},  // RFC 8215 local-use space
      {"2001:db8::", 0, n64::PrefixError::BadLength},
      {"2001:db8::", 33, n64::PrefixError::BadLength},
      {"2001:db8::", 95, n64::PrefixError::BadLength},
      {"2001:db8::", 128, n64::PrefixError::BadLength},
      {"2001:db8::1", 96, n64::PrefixError::HostBitsSet},
      {"2001:db8:0:1::", 48, n64::PrefixError::HostBitsSet},
      {"2001:db8:0:0:100::", 64, n64::PrefixError::HostBitsSet},
      {"2001:db8:0:0:ff00::", 96, n64::PrefixError::ReservedOctetSet},
      {"64:ff9b::", 64, n64::PrefixError::WellKnownNotSlash96},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.addr) + "/" + std::to_string(c.len));
    EXPECT_EQ(n64::validate_prefix(prefix(c.addr, c.len)), c.want);
    EXPECT_FALSE(n64::prefix_error_name(c.want).empty());
  }
}

TEST(Nat64Addr, ExtractIsStrict) {
  uint32_t out = 0;
  EXPECT_EQ(n64::extract(prefix("2001:db8::", 32), v6("2001:db9:c000:221::"), out),
            n64::MapError::PrefixMismatch);
  // u octet (bits 64-71) set.
  EXPECT_EQ(
      n64::extract(prefix("2001:db8:122:344::", 64), v6("2001:db8:122:344:1c0:2:2100:0"), out),
      n64::MapError::ReservedBitsSet);
  // suffix set.
  EXPECT_EQ(n64::extract(prefix("2001:db8::", 32), v6("2001:db8:c000:221::1"), out),
            n64::MapError::ReservedBitsSet);
  EXPECT_EQ(n64::extract(prefix("2001:db8:100::", 40), v6("2001:db8:1c0:2:21::1:0"), out),
            n64::MapError::ReservedBitsSet);
  EXPECT_TRUE(n64::in_prefix(prefix("2001:db8:100::", 40), v6("2001:db8:1ff::")));
  EXPECT_FALSE(n64::in_prefix(prefix("2001:db8:100::", 40), v6("2001:db8:200::")));
  EXPECT_EQ(n64::map_error_name(n64::MapError::NonGlobalWithWkp), "non_global_with_wkp");
}

}  // namespace
}  // namespace eipgate::testing
