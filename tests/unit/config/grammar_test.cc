// The shared table of valid and invalid values (tests/data/config_grammar.json) against the C++
// schema toolkit; ami/tests/test_config_grammar.py checks the Python renderer against the same
// table, so both sides accept exactly the same durations, booleans, addresses and prefixes.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/ipv4_text.h"
#include "common/yaml_schema.h"

namespace {

namespace ys = eipgate::yaml_schema;
using nlohmann::json;

const json& table() {
  static const json t = [] {
    std::ifstream in(EIPGATE_GRAMMAR_TABLE);
    EXPECT_TRUE(in.good()) << EIPGATE_GRAMMAR_TABLE;
    return json::parse(in);
  }();
  return t;
}

TEST(ConfigGrammar, TableIsNotEmpty) {
  for (const char* kind : {"durations_ms", "booleans", "ipv4", "cidrs", "networks", "keys"}) {
    EXPECT_GE(table().at(kind).size(), 4U) << kind;
  }
}

TEST(ConfigGrammar, Durations) {
  for (const auto& row : table().at("durations_ms")) {
    const std::string text = row.at(0);
    SCOPED_TRACE(text);
    std::string why;
    const auto ms = ys::parse_duration_ms(text, &why);
    if (row.at(1).is_null()) {
      EXPECT_FALSE(ms) << *ms;
      EXPECT_FALSE(why.empty());
    } else {
      ASSERT_TRUE(ms) << why;
      EXPECT_EQ(*ms, row.at(1).get<uint64_t>());
    }
  }
}

TEST(ConfigGrammar, Booleans) {
  for (const auto& row : table().at("booleans")) {
    const std::string text = row.at(0);
    SCOPED_TRACE(text);
    std::string why;
    const auto b = ys::parse_bool(text, &why);
    if (row.at(1).is_null()) {
      EXPECT_FALSE(b);
      EXPECT_NE(why.find("is not a boolean"), std::string::npos) << why;
    } else {
      ASSERT_TRUE(b) << why;
      EXPECT_EQ(*b, row.at(1).get<bool>());
    }
  }
}

TEST(ConfigGrammar, Addresses) {
  for (const auto& row : table().at("ipv4")) {
    const std::string text = row.at(0);
    SCOPED_TRACE(text);
    std::string why;
    const auto a = ys::parse_address(text, &why);
    if (row.at(1).is_null()) {
      EXPECT_FALSE(a);
      EXPECT_NE(why.find("is not an IPv4 address"), std::string::npos) << why;
    } else {
      ASSERT_TRUE(a) << why;
      EXPECT_EQ(eipgate::ipv4_to_string(*a), row.at(1).get<std::string>());
    }
  }
}

void check_prefixes(const char* kind, bool network) {
  for (const auto& row : table().at(kind)) {
    const std::string text = row.at(0);
    SCOPED_TRACE(std::string(kind) + " " + text);
    std::string why;
    const auto c = network ? ys::parse_network(text, &why) : ys::parse_cidr(text, &why);
    if (row.at(1).is_null()) {
      EXPECT_FALSE(c) << c->to_string();
      EXPECT_FALSE(why.empty());
    } else {
      ASSERT_TRUE(c) << why;
      EXPECT_EQ(c->to_string(), row.at(1).get<std::string>());
    }
  }
}

TEST(ConfigGrammar, Cidrs) { check_prefixes("cidrs", false); }
TEST(ConfigGrammar, Networks) { check_prefixes("networks", true); }

TEST(ConfigGrammar, DidYouMean) {
  for (const auto& row : table().at("keys")) {
    const std::string name = row.at(0);
    SCOPED_TRACE(name);
    // did_you_mean takes an initializer list; the table's candidates are at most three.
    std::vector<std::string> c = row.at(1).get<std::vector<std::string>>();
    ASSERT_LE(c.size(), 3U);
    c.resize(3, std::string(64, '#'));  // padding no key is near
    const std::string got = ys::did_you_mean(name, {c[0], c[1], c[2]});
    if (row.at(2).is_null()) {
      EXPECT_EQ(got, "");
    } else {
      EXPECT_EQ(got, " (did you mean '" + row.at(2).get<std::string>() + "'?)");
    }
  }
}

TEST(ConfigGrammar, MessagesQuoteTheValue) {
  std::string why;
  EXPECT_FALSE(ys::parse_duration_ms("350", &why));
  EXPECT_EQ(why, "'350' has no unit (use ms, s, m or h, e.g. 350s)");
  EXPECT_FALSE(ys::parse_duration_ms("2d", &why));
  EXPECT_EQ(why, "'2d': unknown unit 'd' (use ms, s, m or h)");
  EXPECT_FALSE(ys::parse_duration_ms("8761h", &why));
  EXPECT_EQ(why, "'8761h' is too long");
  EXPECT_FALSE(ys::parse_network("10.1.2.3/16", &why));
  EXPECT_EQ(why, "'10.1.2.3/16' has host bits set (the network would be 10.1.0.0/16)");
  EXPECT_FALSE(ys::parse_cidr("10.0.0.0", &why));
  EXPECT_EQ(why, "'10.0.0.0' has no prefix length (write it as address/length)");
}

TEST(ConfigSchema, MapEntriesReportsEveryKeyProblemInOrder) {
  const YAML::Node n = YAML::Load("a: 1\nsockt: 2\na: 3\n[x]: 4\nb: 5\n");
  std::vector<ys::Issue> issues;
  const auto entries = ys::map_entries(n, 1, "admin", {"a", "b", "socket"}, &issues);
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0].key, "a");
  EXPECT_EQ(entries[1].key, "b");
  EXPECT_EQ(entries[1].line, 5);
  ASSERT_EQ(issues.size(), 3U);
  EXPECT_EQ(issues[0].line, 2);
  EXPECT_EQ(issues[0].reason, "admin: unknown key 'sockt' (did you mean 'socket'?)");
  EXPECT_EQ(issues[1].reason, "admin: duplicate key 'a' (first on line 1)");
  EXPECT_EQ(issues[2].reason, "admin: keys must be plain names");
}

TEST(ConfigSchema, MapEntriesOfScalarNullAndUndefined) {
  std::vector<ys::Issue> issues;
  EXPECT_TRUE(ys::map_entries(YAML::Load("5"), 3, "admin", {"socket"}, &issues).empty());
  ASSERT_EQ(issues.size(), 1U);
  EXPECT_EQ(issues[0].line, 3);
  EXPECT_EQ(issues[0].reason, "admin: expected a mapping, got a scalar");
  issues.clear();
  const YAML::Node root = YAML::Load("x: 1\n");
  const YAML::Node& croot = root;
  EXPECT_TRUE(ys::map_entries(croot["missing"], 0, "admin", {"socket"}, &issues).empty());
  EXPECT_TRUE(ys::map_entries(YAML::Node(), 0, "admin", {"socket"}, &issues).empty());
  EXPECT_TRUE(issues.empty());
  EXPECT_EQ(ys::line_of(croot["missing"]), 0);
  EXPECT_STREQ(ys::type_name(croot["missing"]), "nothing");
}

TEST(ConfigSchema, ScalarEntriesKeepScalarsAndReportTheRest) {
  const YAML::Node n = YAML::Load("enabled: true\ngroup: [a]\nnope: 1\nempty:\nname: x\n");
  std::vector<ys::SchemaError> errors;
  const auto entries =
      ys::scalar_entries(n, 4, "f.yaml", "logs", {"enabled", "group", "empty", "name"}, &errors);
  ASSERT_EQ(entries.size(), 2U);
  EXPECT_EQ(entries[0].key, "enabled");
  EXPECT_EQ(entries[0].value, "true");
  EXPECT_EQ(entries[1].key, "name");
  EXPECT_EQ(entries[1].line, 5);
  ASSERT_EQ(errors.size(), 3U);
  EXPECT_EQ(errors[0].to_string(), "f.yaml:3: logs: unknown key 'nope' (did you mean 'name'?)");
  EXPECT_EQ(errors[1].to_string(), "f.yaml:2: logs.group: expected a value, got a list");
  EXPECT_EQ(errors[2].to_string(), "f.yaml:4: logs.empty: expected a value, got nothing");
  errors.clear();
  EXPECT_TRUE(ys::scalar_entries(YAML::Node(YAML::NodeType::Null), 9, "f.yaml", "logs", {"enabled"},
                                 &errors)
                  .empty());
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].to_string(), "f.yaml:9: logs: expected a mapping, got nothing");
}

TEST(ConfigSchema, SchemaErrorFormat) {
  EXPECT_EQ((ys::SchemaError{"f.yaml", 7, "why"}).to_string(), "f.yaml:7: why");
  EXPECT_EQ((ys::SchemaError{"f.yaml", 0, "cannot open"}).to_string(), "f.yaml: cannot open");
  // Always one line, whatever bytes the file quoted into the reason.
  EXPECT_EQ((ys::SchemaError{"f.yaml", 2, std::string("'a\nb\0\x7f\t' bad", 12)}).to_string(),
            "f.yaml:2: 'a\\nb\\x00\\x7f\\x09' bad");
}

TEST(ConfigSchema, LoadDocument) {
  ys::Issue e;
  EXPECT_TRUE(ys::load_document("a: 1\n", &e));
  EXPECT_FALSE(ys::load_document("a: [\n", &e));
  EXPECT_NE(e.reason.find("YAML syntax error"), std::string::npos);
  EXPECT_FALSE(ys::load_document("a: 1\n---\nb: 2\n", &e));
  EXPECT_EQ(e.reason, "expected one YAML document, found 2");
}

TEST(ConfigSchema, StrayTopLevelCommaIsRefusedBeforeYamlCpp) {
  // yaml-cpp 0.7 allocates until killed on these (found by control_config_fuzz).
  for (const auto& [text, line] :
       std::vector<std::pair<std::string, int>>{{",", 1},
                                                {",a: 1\n", 1},
                                                {"# c\n  ,x\n", 2},
                                                {"{}\n,\n", 2},
                                                {"{a: 1},\n", 1},
                                                {"{a: '}', b: \"]\\\"\"}\n\n ,\n", 3},
                                                {"[1, [2]] # c\n,", 2},
                                                {"&one####,##", 1},
                                                {"&x ,\n", 1},
                                                {"!t,\n", 1},
                                                {"&a !t\n ,\n", 2}}) {
    SCOPED_TRACE(text);
    ys::Issue e;
    EXPECT_FALSE(ys::load_document(text, &e));
    EXPECT_EQ(e.line, line);
    EXPECT_EQ(e.reason, "YAML syntax error: ',' outside a flow collection ([...] or {...})");
  }
  // Control bytes YAML does not allow (yaml-cpp 0.7 loops on "\0,,").
  ys::Issue c;
  EXPECT_FALSE(ys::load_document(std::string("a: 1\n\0,,", 8), &c));
  EXPECT_EQ(c.line, 2);
  EXPECT_EQ(c.reason, "YAML syntax error: control byte 0x00 is not allowed in a YAML file");
  EXPECT_FALSE(ys::load_document("a: \x7f\n", &c));
  EXPECT_TRUE(ys::load_document("a: 1\r\nb: \t2\n", &c)) << c.reason;  // CR and tab are fine
  // Commas everywhere else are YAML's business (and fine here).
  ys::Issue e;
  EXPECT_TRUE(ys::load_document("a: x,y\nb: [1, 2]\nc: {d: 1, e: 2}\n", &e)) << e.reason;
  EXPECT_TRUE(ys::load_document("{a: 1, b: [2, 3]}\n", &e)) << e.reason;
  EXPECT_TRUE(ys::load_document("extra_args: \"--a,b\"\n", &e)) << e.reason;
}

}  // namespace
