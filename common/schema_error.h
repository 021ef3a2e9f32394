// The error every eipgate config loader reports: "file:line: reason" (common/yaml_schema.h).
// Apart from the toolkit so headers can name it without pulling in yaml-cpp.
#pragma once

#include <string>

namespace eipgate::yaml_schema {

// "file:line: reason"; "file: reason" when the error belongs to no line (an unreadable file).
// to_string() is always one line: control characters in the reason are escaped (\n, \x01).
struct SchemaError {
  std::string file;
  int line = 0;  // 1-based; 0 when not tied to a line
  std::string reason;
  [[nodiscard]] std::string to_string() const;  // defined in yaml_schema.cc
};

}  // namespace eipgate::yaml_schema
