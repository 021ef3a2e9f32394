// SNI and Host parsers, name patterns: found, split at every byte (NeedMore), absent, malformed.
#include "dataplane/policy/name_parsers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/unit/policy/client_hello.h"

namespace eipgate::policy {
namespace {

using testing::ClientHello;
using testing::to_bytes;

NameStatus sni(const std::vector<uint8_t>& b, std::string* out) {
  return parse_tls_sni(b.data(), b.size(), out);
}
NameStatus host(const std::string& s, std::string* out) {
  return parse_http_host(reinterpret_cast<const uint8_t*>(s.data()), s.size(), out);
}

// ---- TLS ------------------------------------------------------------------------------------

TEST(TlsSni, FoundInOneRecord) {
  std::string name;
  EXPECT_EQ(sni(ClientHello().sni("API.Example.COM").bytes(), &name), NameStatus::Found);
  EXPECT_EQ(name, "api.example.com");
}

TEST(TlsSni, TrailingDotStripped) {
  std::string name;
  EXPECT_EQ(sni(ClientHello().sni("api.example.com.").bytes(), &name), NameStatus::Found);
  EXPECT_EQ(name, "api.example.com");
}

TEST(TlsSni, AfterGreaseAndOtherExtensions) {
  std::string name;
  const auto b = ClientHello()
                     .grease()
                     .extension(0x0033, 1250)  // a post-quantum-sized key_share
                     .extension(0x0015, 200)   // padding
                     .sni("late.example.org")
                     .sni_position_last()
                     .bytes();
  EXPECT_EQ(sni(b, &name), NameStatus::Found);
  EXPECT_EQ(name, "late.example.org");
}

TEST(TlsSni, SplitAcrossRecords) {
  std::string name;
  const auto b = ClientHello()
                     .extension(0x0033, 900)
                     .sni("x.example.net")
                     .sni_position_last()
                     .records(100)
                     .bytes();
  ASSERT_GT(b.size(), 1000u);
  EXPECT_EQ(sni(b, &name), NameStatus::Found);
  EXPECT_EQ(name, "x.example.net");
}

// Every strict prefix of a valid hello is NeedMore (the caller accumulates segments), and the
// name is found exactly when its bytes have arrived.
TEST(TlsSni, EveryPrefixNeedsMoreUntilTheNameArrives) {
  for (size_t frag : {size_t{0}, size_t{64}}) {
    const auto b = ClientHello()
                       .grease()
                       .extension(0x0033, 300)
                       .sni("pfx.example.com")
                       .sni_position_last()
                       .records(frag)
                       .bytes();
    size_t first_found = 0;
    for (size_t n = 1; n <= b.size(); ++n) {
      std::string name;
      const NameStatus s = parse_tls_sni(b.data(), n, &name);
      if (s == NameStatus::Found) {
        EXPECT_EQ(name, "pfx.example.com");
        if (first_found == 0) first_found = n;
      } else {
        ASSERT_EQ(s, NameStatus::NeedMore) << "prefix " << n << " frag " << frag;
        ASSERT_EQ(first_found, 0u) << "found, then not, at " << n;
      }
    }
    EXPECT_GT(first_found, 0u);
  }
}

TEST(TlsSni, NoServerNameExtension) {
  std::string name;
  EXPECT_EQ(sni(ClientHello().grease().extension(0x000d, 20).bytes(), &name),
            NameStatus::NotPresent);
  EXPECT_EQ(sni(ClientHello().no_extensions().bytes(), &name), NameStatus::NotPresent);
}

TEST(TlsSni, FollowingRecordsDoNotMatter) {
  auto b = ClientHello().sni("a.example.com").bytes();
  const std::vector<uint8_t> ccs{20, 3, 3, 0, 1, 1};  // TLS 1.3 middlebox-compat CCS
  b.insert(b.end(), ccs.begin(), ccs.end());
  std::string name;
  EXPECT_EQ(sni(b, &name), NameStatus::Found);
}

// Found by the fuzzer: once the ClientHello is complete, a broken record header after it must
// not turn a final answer into Malformed (the dataplane stops at the first final answer).
TEST(TlsSni, BrokenRecordAfterACompleteHelloIsNotRead) {
  const std::vector<uint8_t> junk{22, 3, 9, 0, 0};  // bad version and zero length
  for (const bool with_name : {true, false}) {
    auto b = with_name ? ClientHello().sni("a.example.com").bytes()
                       : ClientHello().no_extensions().bytes();
    const size_t hello = b.size();
    b.insert(b.end(), junk.begin(), junk.end());
    std::string whole, prefix;
    const NameStatus full = sni(b, &whole);
    EXPECT_EQ(full, with_name ? NameStatus::Found : NameStatus::NotPresent);
    EXPECT_EQ(sni(std::vector<uint8_t>(b.begin(), b.begin() + hello), &prefix), full);
    EXPECT_EQ(whole, prefix);
  }
}

TEST(TlsSni, HandshakeCutShortByAnotherRecordIsMalformed) {
  auto b = ClientHello()
               .extension(0x0033, 300)
               .sni("a.example.com")
               .sni_position_last()
               .records(100)
               .bytes();
  b.resize(5 + 100);  // the first record only, then an alert record
  const std::vector<uint8_t> alert{21, 3, 3, 0, 2, 2, 40};
  b.insert(b.end(), alert.begin(), alert.end());
  std::string name;
  EXPECT_EQ(sni(b, &name), NameStatus::Malformed);
}

TEST(TlsSni, NonTlsIsMalformed) {
  std::string name;
  EXPECT_EQ(sni(to_bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), &name), NameStatus::Malformed);
  EXPECT_EQ(sni(to_bytes("SSH-2.0-OpenSSH_9.2\r\n"), &name), NameStatus::Malformed);
  EXPECT_EQ(sni({22, 9, 1, 0, 10}, &name), NameStatus::Malformed);       // version 9.x
  EXPECT_EQ(sni({22, 3, 1, 0, 0}, &name), NameStatus::Malformed);        // empty record
  EXPECT_EQ(sni({22, 3, 1, 0x48, 0x01}, &name), NameStatus::Malformed);  // record > 16 KiB
  // A ServerHello (type 2) where a ClientHello belongs.
  auto b = ClientHello().sni("a.example.com").bytes();
  b[5] = 2;
  EXPECT_EQ(sni(b, &name), NameStatus::Malformed);
}

TEST(TlsSni, InconsistentLengthsAreMalformed) {
  std::string name;
  const auto good = ClientHello().sni("a.example.com").bytes();
  // Offsets: record 5 + handshake 4 + version 2 + random 32 = 43: session id length.
  auto b = good;
  b[43] = 33;  // > 32
  EXPECT_EQ(sni(b, &name), NameStatus::Malformed);
  b = good;
  b[43 + 1 + 32 + 1] = 7;  // odd cipher suites length
  EXPECT_EQ(sni(b, &name), NameStatus::Malformed);
  // Extensions length not reaching the end of the hello.
  b = good;
  const size_t ext_len_at = 43 + 1 + 32 + 2 + 6 + 2;
  b[ext_len_at + 1] = static_cast<uint8_t>(b[ext_len_at + 1] - 1);
  EXPECT_EQ(sni(b, &name), NameStatus::Malformed);
  // A server_name list length that disagrees with its extension's length.
  b = good;
  b[ext_len_at + 2 + 4 + 1] = static_cast<uint8_t>(b[ext_len_at + 2 + 4 + 1] + 1);
  EXPECT_EQ(sni(b, &name), NameStatus::Malformed);
}

TEST(TlsSni, InvalidNamesAreMalformed) {
  std::string name;
  EXPECT_EQ(sni(ClientHello().sni("").bytes(), &name), NameStatus::Malformed);
  EXPECT_EQ(sni(ClientHello().sni("a..b").bytes(), &name), NameStatus::Malformed);
  EXPECT_EQ(sni(ClientHello().sni(std::string("a\0b.com", 7)).bytes(), &name),
            NameStatus::Malformed);
  EXPECT_EQ(sni(ClientHello().sni("evil.com/x").bytes(), &name), NameStatus::Malformed);
  EXPECT_EQ(sni(ClientHello().sni(std::string(64, 'a') + ".com").bytes(), &name),
            NameStatus::Malformed);
}

TEST(TlsSni, EmptyInputNeedsMore) {
  std::string name;
  EXPECT_EQ(parse_tls_sni(nullptr, 0, &name), NameStatus::NeedMore);
  const uint8_t one = 22;
  EXPECT_EQ(parse_tls_sni(&one, 1, &name), NameStatus::NeedMore);
}

// ---- HTTP -----------------------------------------------------------------------------------

TEST(HttpHost, Found) {
  std::string name;
  EXPECT_EQ(
      host("GET /index.html HTTP/1.1\r\nUser-Agent: x\r\nHost: WWW.Example.com\r\n\r\n", &name),
      NameStatus::Found);
  EXPECT_EQ(name, "www.example.com");
}

TEST(HttpHost, CaseInsensitiveHeaderPortAndWhitespace) {
  std::string name;
  EXPECT_EQ(host("POST /x HTTP/1.0\r\nhOsT: \t api.example.com:8080 \r\n\r\nbody", &name),
            NameStatus::Found);
  EXPECT_EQ(name, "api.example.com");
  EXPECT_EQ(host("GET / HTTP/1.1\nHost: bare-lf.example.com.\n\n", &name), NameStatus::Found);
  EXPECT_EQ(name, "bare-lf.example.com");
}

TEST(HttpHost, AbsoluteFormTargetStillUsesHost) {
  std::string name;
  EXPECT_EQ(host("GET http://other.example/ HTTP/1.1\r\nHost: h.example.com\r\n\r\n", &name),
            NameStatus::Found);
  EXPECT_EQ(name, "h.example.com");
}

TEST(HttpHost, EveryPrefixNeedsMore) {
  const std::string req = "GET /a HTTP/1.1\r\nAccept: */*\r\nHost: p.example.com\r\nX: y\r\n\r\n";
  for (size_t n = 1; n < req.size(); ++n) {
    std::string name;
    EXPECT_EQ(parse_http_host(reinterpret_cast<const uint8_t*>(req.data()), n, &name),
              NameStatus::NeedMore)
        << "prefix " << n;
  }
  std::string name;
  EXPECT_EQ(host(req, &name), NameStatus::Found);
}

TEST(HttpHost, NotPresent) {
  std::string name;
  EXPECT_EQ(host("GET / HTTP/1.0\r\nAccept: */*\r\n\r\n", &name), NameStatus::NotPresent);
  EXPECT_EQ(host("GET / HTTP/1.1\r\nHost:\r\n\r\n", &name), NameStatus::NotPresent);
}

TEST(HttpHost, Malformed) {
  std::string name;
  for (const char* bad : {
           "\x16\x03\x01\x02\x00",                                  // TLS on the HTTP port
           "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",                      // HTTP/2 preface
           "GET / HTTP/1.1\r\nHost: a.com\r\nHost: b.com\r\n\r\n",  // two Host headers
           "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",              // IP literal
           "GET / HTTP/1.1\r\nHost: a.com:http\r\n\r\n",            // non-numeric port
           "GET / HTTP/1.1\r\nHost : a.com\r\n\r\n",                // space before colon
           "GET / HTTP/1.1\r\nHost: a.com\r\n folded.com\r\n\r\n",  // folded Host
           "GET / HTTP/1.1\r\nHost: a b.com\r\n\r\n",               // space inside the name
           "GET /a b HTTP/1.1\r\n",                                 // three spaces
           "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
           "GET / HTTP/1.1\r\nX: \x01\r\n",
       }) {
    EXPECT_EQ(host(bad, &name), NameStatus::Malformed) << bad;
  }
  const std::string binary("GET / HTTP/1.1\r\nX: a\0", 21);
  EXPECT_EQ(host(binary, &name), NameStatus::Malformed);
}

// ---- patterns -------------------------------------------------------------------------------

TEST(NameMatches, ExactAndWildcard) {
  EXPECT_TRUE(name_matches("api.example.com", "api.example.com"));
  EXPECT_TRUE(name_matches("api.example.com", "API.Example.com."));
  EXPECT_TRUE(name_matches("api.example.com.", "api.example.com"));
  EXPECT_FALSE(name_matches("api.example.com", "xapi.example.com"));
  EXPECT_FALSE(name_matches("api.example.com", "api.example.com.evil"));
  EXPECT_TRUE(name_matches("*.example.com", "a.example.com"));
  EXPECT_TRUE(name_matches("*.example.com", "a.b.example.com"));  // one or more labels
  EXPECT_TRUE(name_matches("*.Example.COM", "A.example.com"));
  EXPECT_FALSE(name_matches("*.example.com", "example.com"));
  EXPECT_FALSE(name_matches("*.example.com", "badexample.com"));
  EXPECT_FALSE(name_matches("*.example.com", ".example.com"));
  EXPECT_FALSE(name_matches("*.example.com", "a.example.com.evil.org"));
}

TEST(NamePattern, Validation) {
  std::string why;
  EXPECT_TRUE(valid_name_pattern("api.example.com", &why));
  EXPECT_TRUE(valid_name_pattern("*.example.com", &why));
  EXPECT_TRUE(valid_name_pattern("Under_score.example.com.", &why));
  for (const char* bad : {"", "*", "*.", "**.example.com", "a.*.com", "*example.com", "a..b",
                          "exa mple.com", "1.2.3.4", "a/b"}) {
    why.clear();
    EXPECT_FALSE(valid_name_pattern(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  EXPECT_FALSE(valid_name_pattern(std::string(64, 'a') + ".com", &why));
}

}  // namespace
}  // namespace eipgate::policy
