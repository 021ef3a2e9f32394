// Writes seed inputs for policy_parsers_fuzz (selector byte, split byte, payload): ClientHellos
// (one record, many records, GREASE, no SNI), HTTP requests, name patterns.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/unit/policy/client_hello.h"

namespace {

void write(const std::filesystem::path& dir, const std::string& name, uint8_t selector,
           uint8_t split, const std::vector<uint8_t>& payload) {
  std::ofstream f(dir / name, std::ios::binary);
  f.put(static_cast<char>(selector));
  f.put(static_cast<char>(split));
  f.write(reinterpret_cast<const char*>(payload.data()),
          static_cast<std::streamsize>(payload.size()));
}

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SEED_DIR [WORK_DIR]\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; ++i) std::filesystem::create_directories(argv[i]);
  const std::filesystem::path dir = argv[1];
  using eipgate::policy::testing::ClientHello;
  write(dir, "tls_simple", 0, 128, ClientHello().sni("api.example.com").bytes());
  write(dir, "tls_grease_late_sni", 0, 200,
        ClientHello()
            .grease()
            .extension(0x0033, 300)
            .extension(0x002b, 7)
            .sni("Late.Example.ORG.")
            .sni_position_last()
            .bytes());
  write(dir, "tls_records", 0, 90,
        ClientHello()
            .extension(0x0033, 400)
            .sni("frag.example.net")
            .sni_position_last()
            .records(64)
            .bytes());
  write(dir, "tls_no_sni", 0, 255, ClientHello().grease().extension(0x000d, 20).bytes());
  write(dir, "tls_no_ext", 0, 255, ClientHello().no_extensions().bytes());
  write(dir, "http_get", 1, 100,
        bytes("GET /a?b=c HTTP/1.1\r\nUser-Agent: x\r\nHost: WWW.Example.com:8080\r\n\r\n"));
  write(dir, "http_lf", 1, 255, bytes("POST / HTTP/1.0\nhost: a.b\n\nbody"));
  write(dir, "http_no_host", 1, 255, bytes("GET / HTTP/1.0\r\nAccept: */*\r\n\r\n"));
  write(dir, "pattern_exact", 2, 0, bytes(std::string("api.example.com\0API.example.com.", 32)));
  write(dir, "pattern_wild", 2, 0, bytes(std::string("*.example.com\0a.b.example.com", 29)));
  return 0;
}
