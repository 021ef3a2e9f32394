// Host names from the first payload bytes of a TCP connection (TLS ClientHello SNI, HTTP/1.x
// Host header) and host-name pattern matching. Pure functions: bounds-checked, no exceptions,
// no state; the caller accumulates the client's bytes (up to name_max_bytes) and calls again on
// NeedMore.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace eipgate::policy {

enum class NameStatus : uint8_t {
  Found,       // *out holds the name: lower-case, no trailing dot, no port
  NeedMore,    // everything so far is well-formed, the name is further on
  NotPresent,  // a complete ClientHello / header block without a name
  Malformed,   // not TLS / not HTTP/1.x, or broken framing, or an invalid name
};

std::string_view name_status_name(NameStatus s);

// TLS: one or more handshake records (content type 22) carrying a ClientHello, which may be split
// across records and across segments. Only the ClientHello is read; what follows it is ignored.
NameStatus parse_tls_sni(const uint8_t* data, size_t len, std::string* out);

// HTTP/1.0 and 1.1 requests: request line, then headers up to the empty line. The Host header
// (name case-insensitive) gives the name; its port is stripped. Two Host headers are Malformed
// (RFC 9112 §3.2: such a request is answered 400), as is an IP-literal "[...]" host.
NameStatus parse_http_host(const uint8_t* data, size_t len, std::string* out);

// Whether a name seen on the wire is a usable DNS name: 1..253 characters of labels of 1..63
// [a-z0-9_-] (after lower-casing), no empty label. Parsers return Malformed otherwise.
bool valid_host_name(std::string_view name);

// Pattern syntax: "api.example.com" (exact) or "*.example.com" (wildcard: one OR MORE labels in
// front, so a.example.com and a.b.example.com match, example.com does not). Case-insensitive;
// a trailing dot on either side is ignored. nullopt-style: false with *why on a bad pattern.
bool valid_name_pattern(std::string_view pattern, std::string* why);
bool name_matches(std::string_view pattern, std::string_view host);

}  // namespace eipgate::policy
