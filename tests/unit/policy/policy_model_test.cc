// The policy model outside the parser: which inside prefixes no group governs (--check and the
// start-up log say how many).
#include "dataplane/policy/policy_model.h"

#include <gtest/gtest.h>

namespace eipgate::policy {
namespace {

Prefix pfx(const char* text) {
  std::string why;
  auto p = parse_prefix(text, &why);
  EXPECT_TRUE(p) << why;
  return p.value_or(Prefix{});
}

PolicyConfig two_groups() {
  PolicyConfig c;
  c.groups.push_back(SourceGroup{"lambdas", {pfx("10.0.1.0/24"), pfx("10.0.2.0/25")}, {}});
  c.groups.push_back(SourceGroup{"batch", {pfx("10.0.2.128/25")}, {}});
  return c;
}

TEST(UngovernedSources, CountsInsidePrefixesWithAddressesInNoGroup) {
  const PolicyConfig c = two_groups();
  const std::vector<Prefix> inside{pfx("10.0.1.0/24"), pfx("10.0.2.0/24"), pfx("10.0.3.0/24"),
                                   pfx("10.0.0.0/23")};
  const UngovernedSources u = ungoverned_sources(c, inside);
  EXPECT_EQ(u.prefixes, 2u);  // 10.0.3.0/24 wholly, 10.0.0.0/23 in part (10.0.0.0/24)
  EXPECT_EQ(u.partly, 1u);
  EXPECT_EQ(u.addresses, 512u);
  ASSERT_EQ(u.which.size(), 2u);
  EXPECT_EQ(u.which[0].to_string(), "10.0.3.0/24");
  EXPECT_EQ(u.which[1].to_string(), "10.0.0.0/23");
  const std::string line = ungoverned_summary(c, inside);
  EXPECT_NE(line.find("2 of 4 inside prefixes"), std::string::npos) << line;
  EXPECT_NE(line.find("unmatched_sources: allow"), std::string::npos) << line;
}

TEST(UngovernedSources, NothingToSayWhenEveryAddressIsGovernedOrThereIsNoPolicy) {
  const PolicyConfig c = two_groups();
  EXPECT_EQ(ungoverned_sources(c, {pfx("10.0.2.0/24")}).prefixes, 0u);
  EXPECT_EQ(ungoverned_summary(c, {pfx("10.0.2.0/24")}), "");
  EXPECT_EQ(ungoverned_summary(PolicyConfig{}, {pfx("10.0.0.0/8")}), "");
}

TEST(UngovernedSources, AClosedPolicySaysTheyAreRefused) {
  PolicyConfig c = two_groups();
  c.unmatched_allow = false;
  c.unmatched_deny = DenyAction::Drop;
  const std::string line = ungoverned_summary(c, {pfx("0.0.0.0/0")});
  EXPECT_NE(line.find("1 of 1 inside prefixes"), std::string::npos) << line;
  EXPECT_NE(line.find("refused (unmatched_sources: drop)"), std::string::npos) << line;
}

}  // namespace
}  // namespace eipgate::policy
