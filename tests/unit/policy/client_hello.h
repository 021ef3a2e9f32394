// Builds TLS ClientHello records for the SNI parser's tests, the fuzz seeds and the benchmark:
// ClientHello().sni("api.example.com").grease().key_share(1200).records(512).bytes().
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace eipgate::policy::testing {

class ClientHello {
 public:
  ClientHello& sni(std::string name) {
    sni_.push_back(std::move(name));
    return *this;
  }
  ClientHello& grease() {  // a GREASE extension (RFC 8701) before the others
    extensions_.push_back({0x0a0a, {}});
    return *this;
  }
  // An opaque extension of `n` bytes (key_share-like), placed where called.
  ClientHello& extension(uint16_t type, size_t n) {
    extensions_.push_back({type, std::vector<uint8_t>(n, 0x42)});
    return *this;
  }
  ClientHello& sni_position_last() {
    sni_last_ = true;
    return *this;
  }
  ClientHello& no_extensions() {
    no_ext_ = true;
    return *this;
  }
  ClientHello& session_id(size_t n) {
    sid_ = n;
    return *this;
  }
  ClientHello& records(size_t max_fragment) {  // split the handshake over records of this size
    fragment_ = max_fragment;
    return *this;
  }

  // The handshake message (type 1, 24-bit length, body).
  std::vector<uint8_t> handshake() const {
    std::vector<uint8_t> body;
    put16(body, 0x0303);
    body.insert(body.end(), 32, 0x11);  // random
    body.push_back(static_cast<uint8_t>(sid_));
    body.insert(body.end(), sid_, 0x22);
    put16(body, 6);  // three suites, the first GREASE
    put16(body, 0x2a2a);
    put16(body, 0x1301);
    put16(body, 0xc02f);
    body.push_back(1);  // compression: null
    body.push_back(0);
    if (!no_ext_) {
      std::vector<uint8_t> ext;
      auto put_sni = [&] {
        for (const auto& name : sni_) {
          std::vector<uint8_t> list;
          list.push_back(0);  // host_name
          put16(list, static_cast<uint16_t>(name.size()));
          list.insert(list.end(), name.begin(), name.end());
          put16(ext, 0);  // server_name
          put16(ext, static_cast<uint16_t>(list.size() + 2));
          put16(ext, static_cast<uint16_t>(list.size()));
          ext.insert(ext.end(), list.begin(), list.end());
        }
      };
      if (!sni_last_) put_sni();
      for (const auto& [type, data] : extensions_) {
        put16(ext, type);
        put16(ext, static_cast<uint16_t>(data.size()));
        ext.insert(ext.end(), data.begin(), data.end());
      }
      if (sni_last_) put_sni();
      put16(body, static_cast<uint16_t>(ext.size()));
      body.insert(body.end(), ext.begin(), ext.end());
    }
    std::vector<uint8_t> hs{1};
    hs.push_back(static_cast<uint8_t>(body.size() >> 16));
    hs.push_back(static_cast<uint8_t>(body.size() >> 8));
    hs.push_back(static_cast<uint8_t>(body.size()));
    hs.insert(hs.end(), body.begin(), body.end());
    return hs;
  }

  // The handshake in TLS records (content type 22, version 3.1 as clients send it).
  std::vector<uint8_t> bytes() const {
    const std::vector<uint8_t> hs = handshake();
    std::vector<uint8_t> out;
    const size_t frag = fragment_ == 0 ? 16384 : fragment_;
    for (size_t off = 0; off < hs.size(); off += frag) {
      const size_t n = std::min(frag, hs.size() - off);
      out.push_back(22);
      put16(out, 0x0301);
      put16(out, static_cast<uint16_t>(n));
      out.insert(out.end(), hs.begin() + static_cast<std::ptrdiff_t>(off),
                 hs.begin() + static_cast<std::ptrdiff_t>(off + n));
    }
    return out;
  }

 private:
  static void put16(std::vector<uint8_t>& v, uint16_t x) {
    v.push_back(static_cast<uint8_t>(x >> 8));
    v.push_back(static_cast<uint8_t>(x));
  }
  std::vector<std::string> sni_;
  std::vector<std::pair<uint16_t, std::vector<uint8_t>>> extensions_;
  bool sni_last_ = false;
  bool no_ext_ = false;
  size_t sid_ = 32;
  size_t fragment_ = 0;
};

inline std::vector<uint8_t> to_bytes(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace eipgate::policy::testing
