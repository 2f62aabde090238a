// Typed access to parsed JSON that turns every mismatch into an InputError naming the key path.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "scheduler/graph.hpp"

namespace rematch::json_reader {

nlohmann::json parse(const std::string& text, const std::string& what);
// A short, one-line description of a value for error messages (scalars quoted, others by type).
std::string describe(const nlohmann::json& value);
const nlohmann::json& member(const nlohmann::json& object, const std::string& key, const std::string& path);
double non_negative_number(const nlohmann::json& value, const std::string& path);
long long non_negative_integer(const nlohmann::json& value, const std::string& path);
std::vector<double> number_array(const nlohmann::json& object, const std::string& key, std::size_t length,
                                 const std::string& path);

}  // namespace rematch::json_reader
