// Compiles a PolicyConfig into a source -> group table and one first-match classifier per group
// (a SegmentTable by default; the registered backend, rte_acl, on request or as fallback;
// priority = rule order). Standard library only. Host-name rules become entries of two kinds:
// "pending" entries for TCP to inspected ports (-> NeedName) and /32 entries for the addresses
// their exact names resolved to (everything else). Only the build allocates; lookups are read-only
// on shared, immutable structures.
#include "dataplane/policy/compiled_policy.h"

#include <algorithm>
#include <atomic>
#include <set>
#include <utility>

#include "dataplane/policy/segment_table.h"

namespace eipgate::policy {

namespace {

constexpr uint8_t kIpProtoIcmp = 1;
constexpr uint8_t kIpProtoTcp = 6;
constexpr uint8_t kIpProtoUdp = 17;

// TCP, UDP, ICMP bits a rule applies to; "other" protocols only through Any without ports.
bool rule_l4_match(const Rule& r, uint8_t ip_proto, uint16_t port) {
  switch (r.proto) {
    case Proto::Tcp:
      if (ip_proto != kIpProtoTcp) return false;
      break;
    case Proto::Udp:
      if (ip_proto != kIpProtoUdp) return false;
      break;
    case Proto::Icmp:
      return ip_proto == kIpProtoIcmp;
    case Proto::Any:
      if (!r.has_ports) return true;
      if (ip_proto != kIpProtoTcp && ip_proto != kIpProtoUdp) return false;
      break;
  }
  return port >= r.port_lo && port <= r.port_hi;
}

bool rule_dst_match(const Rule& r, uint32_t dst) {
  return std::any_of(r.dst.begin(), r.dst.end(),
                     [dst](const Prefix& p) { return p.contains(dst); });
}

// Protocol values an entry for the rule carries (0 with mask 0 = any protocol).
std::vector<std::pair<uint8_t, uint8_t>> entry_protos(const Rule& r) {
  switch (r.proto) {
    case Proto::Tcp:
      return {{kIpProtoTcp, 0xff}};
    case Proto::Udp:
      return {{kIpProtoUdp, 0xff}};
    case Proto::Icmp:
      return {{kIpProtoIcmp, 0xff}};
    case Proto::Any:
      if (r.has_ports) return {{kIpProtoTcp, 0xff}, {kIpProtoUdp, 0xff}};
      return {{0, 0}};
  }
  return {};
}

bool contains_sorted(const std::vector<uint16_t>& v, uint16_t x) {
  return std::binary_search(v.begin(), v.end(), x);
}

std::atomic<const ClassifierBackend*> g_backend{nullptr};

// The registered alternative backend when it can build now; else nullptr with the reason.
const ClassifierBackend* usable_backend(std::string* why) {
  const ClassifierBackend* b = g_backend.load(std::memory_order_acquire);
  if (b == nullptr) {
    *why = "no alternative classifier backend (rte_acl) is registered";
    return nullptr;
  }
  return b->ready(why) ? b : nullptr;
}

}  // namespace

void register_classifier_backend(const ClassifierBackend* backend) {
  g_backend.store(backend, std::memory_order_release);
}

struct CompiledPolicy::Group {
  // Both return (rule index in group << 1) | pending for the first matching entry.
  SegmentTable table;                         // Backend::Segments
  std::unique_ptr<GroupClassifier> fallback;  // the registered backend (rte_acl); null: unused
  uint32_t default_id = 0;           // rule id of the group default; rule i has default_id + 1 + i
  const SourceGroup* src = nullptr;  // points into the shared config
  // The resolved addresses this group was built with (change detection for with_resolved).
  std::vector<std::pair<std::string, std::vector<uint32_t>>> resolved_used;
};

namespace {

using Group = CompiledPolicy::Group;

// Exact names of the group whose addresses its build uses.
std::vector<std::string> names_used(const SourceGroup& g, const PolicyConfig& c) {
  std::set<std::string> out;
  for (const auto& r : g.rules) {
    if (r.hosts.empty()) continue;
    // Traffic this rule may see without an inspectable name: anything but TCP to the inspected
    // ports (conservatively: resolve whenever the rule is not TCP-only within those ports).
    bool only_inspected = r.proto == Proto::Tcp && r.has_ports;
    if (only_inspected) {
      for (uint32_t p = r.port_lo; p <= r.port_hi && only_inspected; ++p) {
        const auto port = static_cast<uint16_t>(p);
        only_inspected =
            std::find(c.tls_ports.begin(), c.tls_ports.end(), port) != c.tls_ports.end() ||
            std::find(c.http_ports.begin(), c.http_ports.end(), port) != c.http_ports.end();
      }
    }
    for (const auto& h : r.hosts) {
      if (h.front() == '*') continue;
      if (!only_inspected || g.name_must_match_address) out.insert(h);
    }
  }
  return {out.begin(), out.end()};
}

uint8_t classes_of(std::pair<uint8_t, uint8_t> proto) {
  return proto.second == 0 ? uint8_t{kClassTcp | kClassUdp | kClassIcmp | kClassOther}
                           : proto_class(proto.first);
}

// Cells (candidates + port intervals) a group's segment table may use before the build falls
// back to rte_acl: 4M cells is 48 MiB, far beyond any policy written by hand.
constexpr size_t kMaxSegmentCells = size_t{4} << 20;

std::shared_ptr<const Group> build_group(const SourceGroup& g, uint32_t default_id,
                                         const PolicyConfig& c,
                                         const std::vector<uint16_t>& inspected,
                                         const ResolvedNames& resolved, Backend backend,
                                         std::string* error) {
  auto out = std::make_shared<Group>();
  out->default_id = default_id;
  out->src = &g;
  for (const auto& name : names_used(g, c)) {
    const auto* addrs = resolved.find(name);
    out->resolved_used.emplace_back(name, addrs != nullptr ? *addrs : std::vector<uint32_t>{});
  }

  std::vector<ClassifierEntry> entries;
  std::vector<MatchEntry> match;
  auto add = [&](uint32_t local, bool pending, std::pair<uint8_t, uint8_t> proto, Prefix dst,
                 uint16_t lo, uint16_t hi) {
    // Added in priority order: rule by rule, a rule's pending entries before its others.
    const uint8_t cls = classes_of(proto);
    const bool ported = (cls & (kClassIcmp | kClassOther)) == 0;
    const uint32_t code = (local << 1) | (pending ? 1U : 0U);
    match.push_back(
        MatchEntry{dst, cls, ported ? lo : uint16_t{0}, ported ? hi : uint16_t{0xffff}, code});
    // The first rule wins; a rule's pending entries outrank its resolved-address entries.
    entries.push_back(ClassifierEntry{proto.first, proto.second, dst, lo, hi,
                                      local * 2 + (pending ? 0U : 1U), code});
  };
  for (uint32_t local = 0; local < g.rules.size(); ++local) {
    const Rule& r = g.rules[local];
    const uint16_t lo = r.has_ports ? r.port_lo : 0;
    const uint16_t hi = r.has_ports ? r.port_hi : 0xffff;
    if (r.hosts.empty()) {
      for (const auto& proto : entry_protos(r)) {
        for (const auto& d : r.dst) add(local, false, proto, d, lo, hi);
      }
      continue;
    }
    if (r.proto == Proto::Tcp || r.proto == Proto::Any) {
      for (uint16_t p : inspected) {
        if (p < lo || p > hi) continue;
        for (const auto& d : r.dst) add(local, true, {kIpProtoTcp, 0xff}, d, p, p);
      }
    }
    for (const auto& h : r.hosts) {
      const auto* addrs = resolved.find(h);
      if (addrs == nullptr || h.front() == '*') continue;
      for (uint32_t a : *addrs) {
        if (!rule_dst_match(r, a)) continue;
        for (const auto& proto : entry_protos(r)) add(local, false, proto, Prefix{a, 32}, lo, hi);
      }
    }
  }
  if (entries.empty()) return out;
  std::string why;
  if (backend != Backend::Acl) {
    if (out->table.build(match, kMaxSegmentCells, &why)) return out;
    if (backend == Backend::Segments) {
      *error = "group '" + g.name + "': " + why;
      return nullptr;
    }
  }
  std::string unusable;
  const ClassifierBackend* alt = usable_backend(&unusable);
  if (alt == nullptr) {  // Auto falls back to rte_acl, which needs DPDK's EAL
    *error = "group '" + g.name + "': " + (why.empty() ? "" : why + "; ") + unusable;
    return nullptr;
  }
  out->fallback = alt->build(entries, &why);
  if (!out->fallback) {
    *error = "group '" + g.name + "': " + why;
    return nullptr;
  }
  return out;
}

}  // namespace

// ---- ResolvedNames / NameCache ------------------------------------------------------------

void ResolvedNames::set(std::string_view name, std::vector<uint32_t> addrs) {
  std::sort(addrs.begin(), addrs.end());
  addrs.erase(std::unique(addrs.begin(), addrs.end()), addrs.end());
  names_[std::string(name)] = std::move(addrs);
}

const std::vector<uint32_t>* ResolvedNames::find(std::string_view name) const {
  auto it = names_.find(name);
  return it == names_.end() ? nullptr : &it->second;
}

bool ResolvedNames::resolves_to(std::string_view name, uint32_t addr) const {
  const auto* v = find(name);
  return v != nullptr && std::binary_search(v->begin(), v->end(), addr);
}

bool NameCache::update(std::string_view name, std::vector<uint32_t> addrs, uint32_t ttl_s,
                       uint64_t now_ms) {
  std::sort(addrs.begin(), addrs.end());
  addrs.erase(std::unique(addrs.begin(), addrs.end()), addrs.end());
  ttl_s = std::clamp(ttl_s, min_ttl_s_, max_ttl_s_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    it = entries_.emplace(std::string(name), Entry{}).first;
  } else if (it->second.expires_ms <= now_ms) {
    it->second.addrs.clear();  // expired but not yet collected: counts as absent
  }
  const bool changed = it->second.addrs != addrs;
  it->second.addrs = std::move(addrs);
  it->second.expires_ms = now_ms + uint64_t{ttl_s} * 1000;
  return changed;
}

bool NameCache::expire(uint64_t now_ms) {
  return std::erase_if(entries_,
                       [now_ms](const auto& kv) { return kv.second.expires_ms <= now_ms; }) > 0;
}

std::optional<uint64_t> NameCache::next_expiry_ms() const {
  std::optional<uint64_t> out;
  for (const auto& [name, e] : entries_) {
    if (!out || e.expires_ms < *out) out = e.expires_ms;
  }
  return out;
}

ResolvedNames NameCache::snapshot() const {
  ResolvedNames r;
  for (const auto& [name, e] : entries_) r.set(name, e.addrs);
  return r;
}

// ---- CompiledPolicy ------------------------------------------------------------------------

CompiledPolicy::~CompiledPolicy() = default;

std::unique_ptr<CompiledPolicy> CompiledPolicy::compile(const PolicyConfig& config,
                                                        std::string* error,
                                                        const ResolvedNames& resolved,
                                                        Backend backend) {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  std::unique_ptr<CompiledPolicy> p(new CompiledPolicy());
  p->config_ = std::make_shared<const PolicyConfig>(config);
  p->resolved_ = std::make_shared<const ResolvedNames>(resolved);
  p->tls_ports_ = config.tls_ports;
  p->http_ports_ = config.http_ports;
  std::sort(p->tls_ports_.begin(), p->tls_ports_.end());
  std::sort(p->http_ports_.begin(), p->http_ports_.end());
  p->rule_names_.emplace_back("unmatched-sources");
  if (config.empty()) return p;

  if (config.groups.size() >= kNoGroup) {
    *error = "too many source groups (" + std::to_string(config.groups.size()) + ")";
    return nullptr;
  }
  if (backend == Backend::Acl && usable_backend(error) == nullptr) return nullptr;
  p->backend_ = backend;
  // Sources -> group: longest prefix first, so the first match is the most specific.
  std::vector<MatchEntry> sources;
  for (size_t gi = 0; gi < p->config_->groups.size(); ++gi) {
    for (const auto& s : p->config_->groups[gi].sources) {
      sources.push_back(MatchEntry{s, 0xff, 0, 0xffff, static_cast<uint32_t>(gi)});
    }
  }
  std::stable_sort(sources.begin(), sources.end(),
                   [](const MatchEntry& a, const MatchEntry& b) { return a.dst.len > b.dst.len; });
  auto table = std::make_shared<SegmentTable>();
  if (!table->build(sources, kMaxSegmentCells, error)) return nullptr;
  p->sources_ = std::move(table);

  std::vector<uint16_t> inspected = p->tls_ports_;
  inspected.insert(inspected.end(), p->http_ports_.begin(), p->http_ports_.end());
  std::sort(inspected.begin(), inspected.end());
  std::set<std::string> resolve;
  for (size_t gi = 0; gi < p->config_->groups.size(); ++gi) {
    const SourceGroup& g = p->config_->groups[gi];
    const auto default_id = static_cast<uint32_t>(p->rule_names_.size());
    p->rule_names_.push_back(g.name + "#default");
    for (const auto& r : g.rules) p->rule_names_.push_back(r.name);
    auto built = build_group(g, default_id, *p->config_, inspected, resolved, backend, error);
    if (!built) return nullptr;
    for (const auto& [name, addrs] : built->resolved_used) resolve.insert(name);
    p->groups_.push_back(std::move(built));
  }
  p->to_resolve_.assign(resolve.begin(), resolve.end());
  return p;
}

std::unique_ptr<CompiledPolicy> CompiledPolicy::with_resolved(const ResolvedNames& resolved,
                                                              std::string* error) const {
  std::string scratch;
  if (error == nullptr) error = &scratch;
  std::unique_ptr<CompiledPolicy> p(new CompiledPolicy());
  p->config_ = config_;
  p->sources_ = sources_;
  p->backend_ = backend_;
  p->rule_names_ = rule_names_;
  p->to_resolve_ = to_resolve_;
  p->tls_ports_ = tls_ports_;
  p->http_ports_ = http_ports_;
  p->resolved_ = std::make_shared<const ResolvedNames>(resolved);
  std::vector<uint16_t> inspected = tls_ports_;
  inspected.insert(inspected.end(), http_ports_.begin(), http_ports_.end());
  std::sort(inspected.begin(), inspected.end());
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const auto& old = groups_[gi];
    const bool same =
        std::all_of(old->resolved_used.begin(), old->resolved_used.end(), [&](const auto& kv) {
          const auto* now = resolved.find(kv.first);
          return now != nullptr ? *now == kv.second : kv.second.empty();
        });
    if (same) {
      p->groups_.push_back(old);
      continue;
    }
    auto built =
        build_group(*old->src, old->default_id, *config_, inspected, resolved, backend_, error);
    if (!built) return nullptr;
    p->groups_.push_back(std::move(built));
  }
  return p;
}

Decision CompiledPolicy::unmatched() const {
  Decision d;
  d.verdict = config_->unmatched_allow ? Decision::Verdict::Allow : Decision::Verdict::Deny;
  d.deny_action = config_->unmatched_deny;
  d.rule_id = kUnmatchedRuleId;
  d.group_id = kNoGroup;
  return d;
}

Decision CompiledPolicy::group_default(uint16_t gid) const {
  const Group& g = *groups_[gid];
  Decision d;
  d.verdict = Decision::Verdict::Deny;
  d.deny_action = g.src->default_deny;
  d.rule_id = g.default_id;
  d.group_id = gid;
  return d;
}

Decision CompiledPolicy::rule_decision(const Group& g, uint32_t local) const {
  const Rule& r = g.src->rules[local];
  Decision d;
  d.verdict = r.allow ? Decision::Verdict::Allow : Decision::Verdict::Deny;
  d.deny_action = r.deny_action;
  d.rule_id = g.default_id + 1 + local;
  return d;
}

Decision CompiledPolicy::classify(uint32_t src, uint32_t dst, uint8_t ip_proto,
                                  uint16_t dst_port) const {
  if (groups_.empty()) return unmatched();
  const uint32_t gid = sources_->lookup(src, 0xff, 0);
  if (gid == SegmentTable::kNone) return unmatched();
  const Group& g = *groups_[gid];
  const uint32_t code = g.fallback ? g.fallback->lookup(dst, ip_proto, dst_port)
                                   : g.table.lookup(dst, proto_class(ip_proto), dst_port);
  if (code == SegmentTable::kNone) return group_default(static_cast<uint16_t>(gid));
  Decision d = rule_decision(g, code >> 1);
  d.group_id = static_cast<uint16_t>(gid);
  if ((code & 1) != 0) d.verdict = Decision::Verdict::NeedName;
  return d;
}

void CompiledPolicy::classify_bulk(const uint32_t* src, const uint32_t* dst,
                                   const uint8_t* ip_proto, const uint16_t* dst_port, Decision* out,
                                   size_t n) const {
  for (size_t i = 0; i < n; ++i) {
    const uint32_t gid = groups_.empty() ? SegmentTable::kNone : sources_->lookup(src[i], 0xff, 0);
    if (gid == SegmentTable::kNone) {
      out[i] = unmatched();
      continue;
    }
    const Group& g = *groups_[gid];
    const uint32_t code = g.fallback
                              ? g.fallback->lookup(dst[i], ip_proto[i], dst_port[i])
                              : g.table.lookup(dst[i], proto_class(ip_proto[i]), dst_port[i]);
    if (code == SegmentTable::kNone) {
      out[i] = group_default(static_cast<uint16_t>(gid));
      continue;
    }
    out[i] = rule_decision(g, code >> 1);
    out[i].group_id = static_cast<uint16_t>(gid);
    if ((code & 1) != 0) out[i].verdict = Decision::Verdict::NeedName;
  }
}

Decision CompiledPolicy::classify_name(uint16_t group_id, std::string_view host, uint32_t dst,
                                       uint8_t ip_proto, uint16_t dst_port) const {
  if (group_id >= groups_.size()) return unmatched();
  const Group& g = *groups_[group_id];
  const auto& rules = g.src->rules;
  // In rule order, as the ACL would: rules before the one that asked for the name cannot match
  // this packet's addresses (their entries would have outranked it), so this agrees with
  // classify() on everything except the name.
  for (uint32_t local = 0; local < rules.size(); ++local) {
    const Rule& r = rules[local];
    if (!rule_l4_match(r, ip_proto, dst_port) || !rule_dst_match(r, dst)) continue;
    if (!r.hosts.empty()) {
      const bool named = std::any_of(r.hosts.begin(), r.hosts.end(),
                                     [&](const std::string& p) { return name_matches(p, host); });
      if (!named) continue;
      if (g.src->name_must_match_address && !resolved_->resolves_to(host, dst)) continue;
    }
    Decision d = rule_decision(g, local);
    d.group_id = group_id;
    return d;
  }
  return group_default(group_id);
}

Decision CompiledPolicy::no_name(uint16_t group_id) const {
  if (group_id >= groups_.size()) return unmatched();
  Decision d = group_default(group_id);
  // A TCP connection that was held for its name is reset whatever the group's default says:
  // the client has sent data, and a silent drop would leave it retransmitting to nowhere.
  d.deny_action = DenyAction::Reject;
  return d;
}

bool CompiledPolicy::inspects_tls(uint16_t port) const { return contains_sorted(tls_ports_, port); }
bool CompiledPolicy::inspects_http(uint16_t port) const {
  return contains_sorted(http_ports_, port);
}

std::string_view CompiledPolicy::rule_name(uint32_t rule_id) const {
  return rule_id < rule_names_.size() ? std::string_view(rule_names_[rule_id]) : "?";
}

std::string_view CompiledPolicy::group_name(uint16_t group_id) const {
  return group_id < groups_.size() ? std::string_view(groups_[group_id]->src->name) : "";
}

// ---- RuleCounters --------------------------------------------------------------------------

RuleCounters::RuleCounters(size_t workers, size_t rules)
    : rules_(rules),
      stride_((rules + 7) / 8 * 8),
      rows_(new std::atomic<uint64_t>[std::max<size_t>(workers, 1) * ((rules + 7) / 8 * 8)]),
      workers_(std::max<size_t>(workers, 1)) {
  for (size_t i = 0; i < workers_ * stride_; ++i) rows_[i].store(0, std::memory_order_relaxed);
}

uint64_t RuleCounters::total(uint32_t rule_id) const {
  uint64_t sum = 0;
  for (size_t w = 0; w < workers_; ++w)
    sum += rows_[w * stride_ + rule_id].load(std::memory_order_relaxed);
  return sum;
}

}  // namespace eipgate::policy
