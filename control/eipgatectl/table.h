// eipgatectl's text output: a JSON value as a table cell, and tables with padded columns.
#pragma once

#include <algorithm>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace eipgatectl {

using nlohmann::json;

// A scalar as a table cell; nested values are printed compactly rather than dropped.
inline std::string cell(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "-";
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

inline bool numeric(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '.' || c == '-';
  });
}

// Columns padded to their widest cell.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& os, const std::string& indent = "  ", bool header = true) const {
    std::vector<std::size_t> width;
    std::vector<bool> right;  // a column of numbers only is right-aligned so magnitudes line up
    for (std::size_t ri = 0; ri < rows_.size(); ++ri) {
      const auto& r = rows_[ri];
      if (width.size() < r.size()) {
        width.resize(r.size(), 0);
        right.resize(r.size(), true);
      }
      for (std::size_t i = 0; i < r.size(); ++i) {
        width[i] = std::max(width[i], r[i].size());
        if (ri > 0) right[i] = right[i] && numeric(r[i]);
      }
    }
    for (std::size_t ri = header ? 0 : 1; ri < rows_.size(); ++ri) {
      const auto& r = rows_[ri];
      std::string line = indent;
      for (std::size_t i = 0; i < r.size(); ++i) {
        const std::size_t pad = width[i] - r[i].size();
        if (right[i]) line.append(pad, ' ');
        line += r[i];
        if (i + 1 < r.size()) {
          if (!right[i]) line.append(pad, ' ');
          line += "  ";
        }
      }
      os << line << '\n';
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace eipgatectl
