// rte_acl behind policy::GroupClassifier: one ACL context per group (fields: protocol, destination,
// destination port), scalar classify (single lookups on the flow-create path).
#include "dataplane/policy/acl_classifier.h"

#include <rte_acl.h>
#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_lcore.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <string>

namespace eipgate::policy {

namespace {

// What the ACL reads: the first field must be one byte; the others come in 4-byte groups.
// Addresses and ports are in network order, as rte_acl expects of its input.
struct AclKey {
  uint8_t proto;
  uint8_t pad[3];
  uint32_t dst_be;
  uint16_t dport_be;
  uint16_t unused;
};
static_assert(sizeof(AclKey) == 12);

enum AclField : uint8_t { kFieldProto, kFieldDst, kFieldDport, kFieldUnused, kNumFields };

constexpr std::array<rte_acl_field_def, kNumFields> kFieldDefs{{
    {RTE_ACL_FIELD_TYPE_BITMASK, sizeof(uint8_t), kFieldProto, 0, offsetof(AclKey, proto)},
    {RTE_ACL_FIELD_TYPE_MASK, sizeof(uint32_t), kFieldDst, 1, offsetof(AclKey, dst_be)},
    {RTE_ACL_FIELD_TYPE_RANGE, sizeof(uint16_t), kFieldDport, 2, offsetof(AclKey, dport_be)},
    {RTE_ACL_FIELD_TYPE_RANGE, sizeof(uint16_t), kFieldUnused, 2, offsetof(AclKey, unused)},
}};

RTE_ACL_RULE_DEF(AclRule, kNumFields);

std::atomic<uint64_t> g_build_seq{0};  // rte_acl names are global in the process

class AclClassifier final : public GroupClassifier {
 public:
  AclClassifier(rte_acl_ctx* ctx, std::vector<uint32_t> codes)
      : ctx_(ctx), codes_(std::move(codes)) {}
  ~AclClassifier() override { rte_acl_free(ctx_); }
  AclClassifier(const AclClassifier&) = delete;
  AclClassifier& operator=(const AclClassifier&) = delete;

  [[nodiscard]] uint32_t lookup(uint32_t dst, uint8_t ip_proto, uint16_t dst_port) const override {
    AclKey key{};
    key.proto = ip_proto;
    key.dst_be = rte_cpu_to_be_32(dst);
    // ICMP carries no port: its entries accept any, so what the caller passes does not matter.
    key.dport_be = rte_cpu_to_be_16(dst_port);
    const uint8_t* data = reinterpret_cast<const uint8_t*>(&key);
    uint32_t result = 0;
    rte_acl_classify(ctx_, &data, &result, 1, 1);
    return result == 0 ? kNoMatch : codes_[result - 1];
  }

 private:
  rte_acl_ctx* ctx_;
  std::vector<uint32_t> codes_;  // userdata - 1 -> entry code
};

bool acl_ready(std::string* why) {
  if (rte_lcore_count() != 0) return true;
  *why = "rte_acl would need DPDK's EAL";
  return false;
}

std::unique_ptr<GroupClassifier> acl_build(const std::vector<ClassifierEntry>& entries,
                                           std::string* error) {
  std::vector<AclRule> rules;
  std::vector<uint32_t> codes;
  rules.reserve(entries.size());
  for (const auto& e : entries) {
    AclRule a{};
    a.data.category_mask = 1;
    a.data.priority = static_cast<int32_t>(RTE_ACL_MAX_PRIORITY - e.rank);
    codes.push_back(e.code);
    a.data.userdata = static_cast<uint32_t>(codes.size());
    a.field[kFieldProto].value.u8 = e.proto;
    a.field[kFieldProto].mask_range.u8 = e.proto_mask;
    a.field[kFieldDst].value.u32 = e.dst.addr;
    a.field[kFieldDst].mask_range.u32 = e.dst.len;
    a.field[kFieldDport].value.u16 = e.port_lo;
    a.field[kFieldDport].mask_range.u16 = e.port_hi;
    a.field[kFieldUnused].value.u16 = 0;
    a.field[kFieldUnused].mask_range.u16 = 0xffff;
    rules.push_back(a);
  }
  const std::string name = "eipgate_pol_" + std::to_string(g_build_seq.fetch_add(1));
  rte_acl_param param{};
  param.name = name.c_str();
  param.socket_id = SOCKET_ID_ANY;
  param.rule_size = RTE_ACL_RULE_SZ(kNumFields);
  param.max_rule_num = static_cast<uint32_t>(rules.size());
  rte_acl_ctx* ctx = rte_acl_create(&param);
  if (ctx == nullptr) {
    *error = std::string("rte_acl_create: ") + rte_strerror(rte_errno);
    return nullptr;
  }
  auto out = std::make_unique<AclClassifier>(ctx, std::move(codes));
  int rc = rte_acl_add_rules(ctx, reinterpret_cast<const rte_acl_rule*>(rules.data()),
                             static_cast<uint32_t>(rules.size()));
  if (rc == 0) {
    rte_acl_config cfg{};
    cfg.num_categories = 1;
    cfg.num_fields = kNumFields;
    std::memcpy(cfg.defs, kFieldDefs.data(), sizeof(kFieldDefs));
    rc = rte_acl_build(ctx, &cfg);
  }
  if (rc != 0) {
    *error =
        "building the ACL (" + std::to_string(rules.size()) + " entries): " + rte_strerror(-rc);
    return nullptr;
  }
  rte_acl_reset_rules(ctx);  // the trie stays; the rule copies are not needed
  rte_acl_set_ctx_classify(ctx, RTE_ACL_CLASSIFY_SCALAR);
  return out;
}

const ClassifierBackend kAcl{"rte_acl", acl_ready, acl_build};

}  // namespace

const ClassifierBackend& acl_backend() { return kAcl; }

void register_acl_backend() { register_classifier_backend(&kAcl); }

}  // namespace eipgate::policy
