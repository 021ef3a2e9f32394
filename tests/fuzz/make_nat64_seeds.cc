// Writes nat64_fuzz's seed corpus (the layout of nat64_fuzz.cc: direction/headroom byte, then an
// IP packet) from the translator tests' packet builder: TCP, UDP, echo, fragments, extension
// headers and ICMP errors, both directions. Usage: nat64_fuzz_seeds SEED_DIR [MORE_DIRS...]
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/unit/engine/nat64_builder.h"

namespace {

using namespace eipgate::testing::nat64b;  // NOLINT(build/namespaces)

const A6 kHost = v6("2001:db8:1::10");
const A6 kRemote = v6("64:ff9b::5db8:d822");
const uint32_t kRemote4 = v4("93.184.216.34");
const uint32_t kOut4 = v4("198.51.100.7");

Bytes six(const Bytes& pkt) { return cat(Bytes{0x01 | (64 << 1)}, pkt); }
Bytes four(const Bytes& pkt) { return cat(Bytes{64 << 1}, pkt); }

std::vector<Bytes> seeds() {
  std::vector<Bytes> s;
  Bytes t6 = tcp(40000, 443, 1, 0x02, text("hello"));
  fix_l4_v6(t6, 6, kHost, kRemote);
  s.push_back(six(ip6({kHost, kRemote, 6, 64}, t6)));
  Bytes u6 = udp(5353, 53, text("query"));
  fix_l4_v6(u6, 17, kHost, kRemote);
  s.push_back(six(ip6({kHost, kRemote, 17, 64}, u6)));
  s.push_back(six(ip6({kHost, kRemote, 0, 64}, cat(ext8(60, 0), cat(ext8(17, 60), u6)))));
  s.push_back(six(ip6({kHost, kRemote, 44, 64}, cat(frag6(17, 0, true, 9), u6))));
  s.push_back(six(ip6({kHost, kRemote, 44, 64}, cat(frag6(17, 8, false, 9), text("tail")))));
  Bytes e6 = icmp(128, 0, echo_rest(1, 1), text("ping"));
  fix_l4_v6(e6, 58, kHost, kRemote);
  s.push_back(six(ip6({kHost, kRemote, 58, 64}, e6)));
  Bytes err6 = icmp(1, 4, 0, ip6({kRemote, kHost, 17, 60}, udp(53, 5353, text("x"))));
  fix_l4_v6(err6, 58, kHost, kRemote);
  s.push_back(six(ip6({kHost, kRemote, 58, 64}, err6)));
  Bytes ptb6 = icmp(2, 0, 1400, ip6({kRemote, kHost, 6, 60}, t6));
  fix_l4_v6(ptb6, 58, kHost, kRemote);
  s.push_back(six(ip6({kHost, kRemote, 58, 64}, ptb6)));

  Bytes t4 = tcp(443, 61000, 1, 0x12, {});
  fix_l4_v4(t4, 6, kRemote4, kOut4);
  s.push_back(four(ip4({kRemote4, kOut4, 6, 64}, t4)));
  s.push_back(four(ip4({kRemote4, kOut4, 17, 64}, udp(53, 1024, text("zero checksum")))));
  Ip4 f{kRemote4, kOut4, 17, 64, 0, 5};
  f.mf = true;
  Bytes u4 = udp(53, 1024, text("fragmented"));
  fix_l4_v4(u4, 17, kRemote4, kOut4);
  s.push_back(four(ip4(f, u4)));
  Bytes e4 = icmp(0, 0, echo_rest(1, 1), text("pong"));
  fix_l4_v4(e4, 1, 0, 0);
  s.push_back(four(ip4({kRemote4, kOut4, 1, 64}, e4)));
  Ip4 opt{kRemote4, kOut4, 17, 64};
  opt.options = {7, 7, 4, 0, 0, 0, 0, 0};
  s.push_back(four(ip4(opt, u4)));
  Ip4 q{kOut4, kRemote4, 6, 3};
  q.df = true;
  for (const uint8_t type : {uint8_t{3}, uint8_t{11}, uint8_t{12}}) {
    Bytes e = icmp(type, type == 3 ? 4 : 0,
                   type == 3    ? 1400
                   : type == 12 ? 8u << 24
                                : 0,
                   ip4(q, tcp(61000, 443, 1, 0x10, {})));
    fix_l4_v4(e, 1, 0, 0);
    s.push_back(four(ip4({v4("192.0.2.254"), kOut4, 1, 64}, e)));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  for (int i = 1; i < argc; ++i) std::filesystem::create_directories(argv[i]);
  int n = 0;
  for (const Bytes& b : seeds()) {
    std::ofstream f(std::string(argv[1]) + "/seed" + std::to_string(n++), std::ios::binary);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  return 0;
}
