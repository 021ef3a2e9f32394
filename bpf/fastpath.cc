// fp_flows entries from translated flow directions (checksum addends per RFC 1624), and the
// batched map operations the engine offloads and withdraws them with.
#include "bpf/fastpath.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace eipgate::bpf {
namespace {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint16_t kMinIpv4Mtu = 68;  // RFC 791: every IPv4 link takes 68 octets
// The kernel's "operation not supported" for a map type without batch operations (not in the
// UAPI errno list); EINVAL is what a kernel older than the batch commands answers.
constexpr int kEnotsupp = 524;

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err < 0 ? -err : err);
}

bool batch_unsupported(int err) {
  const int e = err < 0 ? -err : err;
  return e == EINVAL || e == EOPNOTSUPP || e == kEnotsupp;
}

// One's-complement addend for a 16-bit word going from `from` to `to`: ~m + m' (RFC 1624).
uint32_t word_change(uint16_t from, uint16_t to) {
  return static_cast<uint32_t>(static_cast<uint16_t>(~from)) + to;
}

uint32_t addr_change(uint32_t from, uint32_t to) {
  return word_change(static_cast<uint16_t>(from >> 16), static_cast<uint16_t>(to >> 16)) +
         word_change(static_cast<uint16_t>(from), static_cast<uint16_t>(to));
}

// Folds to 16 bits; 0xffff (one's-complement -0, what an unchanged word adds) becomes 0, so a
// rewrite that changes nothing leaves the checksum field's bytes as they were.
uint16_t fold_delta(uint32_t sum) {
  while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff ? 0 : static_cast<uint16_t>(sum);
}

}  // namespace

FpTuple reversed(const FpTuple& t) {
  FpTuple r;
  r.saddr = t.daddr;
  r.daddr = t.saddr;
  r.proto = t.proto;
  if (t.proto == kProtoIcmp) {
    r.sport = t.sport;  // the identifier travels back in the reply
  } else {
    r.sport = t.dport;
    r.dport = t.sport;
  }
  return r;
}

fp_flow_key fastpath_key(const FpTuple& t) {
  fp_flow_key k{};
  k.saddr = htonl(t.saddr);
  k.daddr = htonl(t.daddr);
  k.sport = htons(t.sport);
  k.dport = htons(t.dport);
  k.proto = t.proto;
  return k;
}

std::string make_fastpath_entry(const FastPathSpec& spec, FastPathEntry& out) {
  const FpTuple& o = spec.original;
  const FpTuple& n = spec.translated;
  if (o.proto != kProtoTcp && o.proto != kProtoUdp && o.proto != kProtoIcmp) {
    return "protocol " + std::to_string(o.proto) + " has no fast path (TCP, UDP, ICMP echo only)";
  }
  if (n.proto != o.proto) return "the translated tuple changes the protocol";
  if (o.proto == kProtoIcmp) {
    if (o.dport != 0 || n.dport != 0) return "ICMP echo tuples carry dport 0";
    if (spec.icmp_type != kFpIcmpEchoRequest && spec.icmp_type != kFpIcmpEchoReply) {
      return "ICMP type " + std::to_string(spec.icmp_type) + " is not an echo request or reply";
    }
  }
  if (spec.mtu < kMinIpv4Mtu) return "mtu " + std::to_string(spec.mtu) + " below 68";
  if (!spec.same_port && spec.tx_slot >= FP_MAX_TX_PORTS) {
    return "tx_slot " + std::to_string(spec.tx_slot) + " out of range";
  }

  FastPathEntry e;
  e.key = fastpath_key(o);
  fp_flow_value& v = e.value;
  v.new_saddr = htonl(n.saddr);
  v.new_daddr = htonl(n.daddr);
  v.new_sport = htons(n.sport);
  v.new_dport = htons(n.dport);
  // Computed on host-order words, stored in network order: a one's-complement sum of
  // byte-swapped words is the byte-swapped sum (RFC 1071), so the program can add it to the field
  // as it sits in the packet.
  const uint32_t addrs = addr_change(o.saddr, n.saddr) + addr_change(o.daddr, n.daddr);
  v.l3_csum_delta = htons(fold_delta(addrs));
  if (o.proto == kProtoIcmp) {
    v.l4_csum_delta = htons(fold_delta(word_change(o.sport, n.sport)));  // no pseudo header
  } else {
    v.l4_csum_delta =
        htons(fold_delta(addrs + word_change(o.sport, n.sport) + word_change(o.dport, n.dport)));
  }
  std::copy(spec.dmac.begin(), spec.dmac.end(), v.dmac);
  std::copy(spec.smac.begin(), spec.smac.end(), v.smac);
  v.mtu = spec.mtu;
  v.tx_slot = spec.same_port ? 0 : static_cast<uint8_t>(spec.tx_slot);
  v.flags = spec.same_port ? FP_F_TX_SAME_PORT : 0;
  if (o.proto == kProtoIcmp) {
    v.flags |= spec.icmp_type == kFpIcmpEchoRequest ? FP_F_ICMP_ECHO_REQUEST : FP_F_ICMP_ECHO_REPLY;
  }
  if (spec.inbound) v.flags |= FP_F_INBOUND;
  v.counter_slot = spec.counter_slot;
  out = e;
  return {};
}

OffloadResult FastPathTable::offload(std::span<const FastPathEntry> entries) {
  OffloadResult r;
  if (flows_fd_ < 0) {
    r.error = "no " STEER_MAP_FP_FLOWS " map";
    return r;
  }
  keys_.resize(entries.size());
  values_.resize(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    keys_[i] = entries[i].key;
    values_[i] = entries[i].value;
  }
  size_t i = 0;
  while (i < entries.size() && r.error.empty()) {
    if (!batch_) {
      if (bpf_map_update_elem(flows_fd_, &keys_[i], &values_[i], BPF_ANY) == 0) {
        ++r.offloaded;
      } else if (errno == E2BIG) {
        ++r.full;
      } else {
        r.error = errno_text("offloading to " STEER_MAP_FP_FLOWS, errno);
      }
      ++i;
      continue;
    }
    bpf_map_batch_opts opts{};  // not LIBBPF_OPTS: a GNU statement expression, -Wpedantic in C++
    opts.sz = sizeof opts;
    opts.elem_flags = BPF_ANY;
    auto count = static_cast<uint32_t>(entries.size() - i);
    const int err = bpf_map_update_batch(flows_fd_, &keys_[i], &values_[i], &count, &opts);
    if (err == 0) {
      r.offloaded += count;
      break;
    }
    if (batch_unsupported(err) && r.offloaded == 0 && r.full == 0) {
      batch_ = false;  // count is meaningless here; updates are idempotent, so redo from i
      continue;
    }
    // The kernel stops at the first element it refuses; count says how many went in before it.
    r.offloaded += count;
    i += count;
    if (err == -E2BIG) {
      ++r.full;
      ++i;
    } else {
      r.error = errno_text("offloading to " STEER_MAP_FP_FLOWS, err);
    }
  }
  stats_.offloaded += r.offloaded;
  stats_.refused_full += r.full;
  return r;
}

WithdrawResult FastPathTable::withdraw(std::span<const fp_flow_key> keys) {
  WithdrawResult r;
  if (flows_fd_ < 0) {
    r.error = "no " STEER_MAP_FP_FLOWS " map";
    return r;
  }
  size_t i = 0;
  while (i < keys.size() && r.error.empty()) {
    if (!batch_) {
      if (bpf_map_delete_elem(flows_fd_, &keys[i]) == 0) {
        ++r.withdrawn;
      } else if (errno == ENOENT) {
        ++r.missing;
      } else {
        r.error = errno_text("withdrawing from " STEER_MAP_FP_FLOWS, errno);
      }
      ++i;
      continue;
    }
    bpf_map_batch_opts opts{};
    opts.sz = sizeof opts;
    auto count = static_cast<uint32_t>(keys.size() - i);
    const int err = bpf_map_delete_batch(flows_fd_, &keys[i], &count, &opts);
    if (err == 0) {
      r.withdrawn += count;
      break;
    }
    if (batch_unsupported(err) && r.withdrawn == 0 && r.missing == 0) {
      batch_ = false;  // nothing was deleted: the kernel refused the command itself
      continue;
    }
    // The kernel stops at the first key it cannot delete; a missing one is skipped.
    r.withdrawn += count;
    i += count;
    if (err == -ENOENT) {
      ++r.missing;
      ++i;
    } else {
      r.error = errno_text("withdrawing from " STEER_MAP_FP_FLOWS, err);
    }
  }
  stats_.withdrawn += r.withdrawn;
  return r;
}

std::string FastPathTable::read_activity(std::span<const fp_flow_key> keys,
                                         std::span<FastPathActivity> out) {
  if (flows_fd_ < 0) return "no " STEER_MAP_FP_FLOWS " map";
  if (out.size() < keys.size()) return "read_activity: out is shorter than keys";
  for (size_t i = 0; i < keys.size(); ++i) {
    fp_flow_value v{};
    FastPathActivity& a = out[i];
    a = FastPathActivity{};
    if (bpf_map_lookup_elem(flows_fd_, &keys[i], &v) == 0) {
      a.present = true;
      fp_flow_counters c{};
      if (counters_fd_ < 0) return "no " STEER_MAP_FP_COUNTERS " map";
      if (bpf_map_lookup_elem(counters_fd_, &v.counter_slot, &c) != 0) {
        return errno_text("reading " STEER_MAP_FP_COUNTERS, errno);
      }
      const bool in = (v.flags & FP_F_INBOUND) != 0;
      a.last_seen_ns = c.last_seen_ns;
      a.packets = in ? c.packets_in : c.packets_out;
      a.bytes = in ? c.bytes_in : c.bytes_out;
    } else if (errno != ENOENT) {
      return errno_text("reading " STEER_MAP_FP_FLOWS, errno);
    }
  }
  return {};
}

std::string FastPathTable::dump(std::vector<FastPathEntry>& out) {
  out.clear();
  if (flows_fd_ < 0) return "no " STEER_MAP_FP_FLOWS " map";
  if (batch_) {
    uint32_t chunk = 4096;
    std::vector<fp_flow_key> keys(chunk);
    std::vector<fp_flow_value> values(chunk);
    uint64_t in_token = 0;  // a hash map's position is a u32 bucket index
    uint64_t out_token = 0;
    bool first = true;
    for (;;) {
      bpf_map_batch_opts opts{};
      opts.sz = sizeof opts;
      uint32_t count = chunk;
      const int err = bpf_map_lookup_batch(flows_fd_, first ? nullptr : &in_token, &out_token,
                                           keys.data(), values.data(), &count, &opts);
      if (err != 0 && err != -ENOENT) {
        if (err == -ENOSPC) {  // one bucket holds more than a chunk: a bigger one
          chunk *= 2;
          keys.resize(chunk);
          values.resize(chunk);
          continue;
        }
        if (first && batch_unsupported(err)) {
          batch_ = false;
          break;
        }
        return errno_text("dumping " STEER_MAP_FP_FLOWS, err);
      }
      for (uint32_t k = 0; k < count; ++k) out.push_back({keys[k], values[k]});
      if (err == -ENOENT) return {};  // the last chunk (perhaps empty)
      in_token = out_token;
      first = false;
    }
  }
  // One key at a time. A key deleted between the two calls is skipped; one deleted under the
  // walk's cursor restarts it from the first key, the behaviour of get_next_key.
  fp_flow_key cur{};
  fp_flow_key next{};
  const fp_flow_key* prev = nullptr;
  while (bpf_map_get_next_key(flows_fd_, prev, &next) == 0) {
    fp_flow_value v{};
    if (bpf_map_lookup_elem(flows_fd_, &next, &v) == 0) {
      out.push_back({next, v});
    } else if (errno != ENOENT) {
      return errno_text("dumping " STEER_MAP_FP_FLOWS, errno);
    }
    cur = next;
    prev = &cur;
  }
  if (errno != ENOENT) return errno_text("walking " STEER_MAP_FP_FLOWS, errno);
  return {};
}

std::string FastPathTable::clear() {
  std::vector<FastPathEntry> all;
  if (std::string err = dump(all); !err.empty()) return err;
  std::vector<fp_flow_key> keys;
  keys.reserve(all.size());
  for (const FastPathEntry& e : all) keys.push_back(e.key);
  return withdraw(keys).error;
}

std::string FastPathTable::set_tx_port(uint32_t slot, int ifindex) {
  if (tx_ports_fd_ < 0) return "no " STEER_MAP_FP_TX_PORTS " map";
  if (slot >= FP_MAX_TX_PORTS) return "tx slot " + std::to_string(slot) + " out of range";
  const auto value = static_cast<uint32_t>(ifindex);
  if (bpf_map_update_elem(tx_ports_fd_, &slot, &value, BPF_ANY) != 0) {
    return errno_text(
        ("setting tx slot " + std::to_string(slot) + " to ifindex " + std::to_string(ifindex))
            .c_str(),
        errno);
  }
  return {};
}

std::string FastPathTable::clear_tx_port(uint32_t slot) {
  if (tx_ports_fd_ < 0) return "no " STEER_MAP_FP_TX_PORTS " map";
  if (slot >= FP_MAX_TX_PORTS) return "tx slot " + std::to_string(slot) + " out of range";
  if (bpf_map_delete_elem(tx_ports_fd_, &slot) != 0 && errno != ENOENT) {
    return errno_text("clearing a tx slot", errno);
  }
  return {};
}

MappedCounters::~MappedCounters() {
  if (slots_ != nullptr) ::munmap(slots_, len_);
}

MappedCounters::MappedCounters(MappedCounters&& o) noexcept
    : slots_(std::exchange(o.slots_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      len_(std::exchange(o.len_, 0)) {}

MappedCounters& MappedCounters::operator=(MappedCounters&& o) noexcept {
  if (this != &o) {
    if (slots_ != nullptr) ::munmap(slots_, len_);
    slots_ = std::exchange(o.slots_, nullptr);
    size_ = std::exchange(o.size_, 0);
    len_ = std::exchange(o.len_, 0);
  }
  return *this;
}

std::string MappedCounters::map(int fd) {
  if (fd < 0) return "no " STEER_MAP_FP_COUNTERS " map";
  bpf_map_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) {
    return errno_text("reading " STEER_MAP_FP_COUNTERS "'s info", errno);
  }
  if (info.value_size != sizeof(fp_flow_counters) || (info.map_flags & BPF_F_MMAPABLE) == 0) {
    return STEER_MAP_FP_COUNTERS " is not a memory-mappable array of fp_flow_counters";
  }
  const size_t bytes = size_t{info.max_entries} * sizeof(fp_flow_counters);
  const long page = ::sysconf(_SC_PAGESIZE);
  const size_t mapped = (bytes + static_cast<size_t>(page) - 1) / static_cast<size_t>(page) *
                        static_cast<size_t>(page);
  void* mem = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) return errno_text("mapping " STEER_MAP_FP_COUNTERS, errno);
  if (slots_ != nullptr) ::munmap(slots_, len_);
  slots_ = static_cast<fp_flow_counters*>(mem);
  size_ = info.max_entries;
  len_ = mapped;
  return {};
}

}  // namespace eipgate::bpf
