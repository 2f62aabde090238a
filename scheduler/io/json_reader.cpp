#include "scheduler/io/json_reader.hpp"

#include <cmath>
#include <limits>

namespace rematch::json_reader {

std::string describe(const nlohmann::json& value) {
  // Only scalars are quoted, and briefly: a value may be arbitrarily deep or long.
  if (value.is_number() || value.is_boolean() || value.is_null()) return value.dump();
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    return nlohmann::json(text.size() > 40 ? text.substr(0, 40) + "..." : text).dump();
  }
  return std::string("a JSON ") + value.type_name();
}

nlohmann::json parse(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // syntax errors, and numbers beyond a double
    // e.what() carries nlohmann's "[json.exception.parse_error.101]" prefix; keep the useful part.
    std::string detail = e.what();
    if (auto pos = detail.find("] "); pos != std::string::npos) detail = detail.substr(pos + 2);
    throw InputError(what + " is not valid JSON: " + detail);
  }
}

const nlohmann::json& member(const nlohmann::json& object, const std::string& key, const std::string& path) {
  if (!object.is_object()) throw InputError(path + " must be a JSON object");
  auto it = object.find(key);
  if (it == object.end()) throw InputError(path + "." + key + ": missing");
  return *it;
}

double non_negative_number(const nlohmann::json& value, const std::string& path) {
  if (!value.is_number()) throw InputError(path + " is not a number (" + std::string(value.type_name()) + ")");
  const double v = value.get<double>();
  if (!std::isfinite(v)) throw InputError(path + " is not a finite number");
  if (v < 0) throw InputError(path + " is negative (" + describe(value) + ")");
  return v;
}

long long non_negative_integer(const nlohmann::json& value, const std::string& path) {
  if (value.is_number_unsigned() || (value.is_number_integer() && value.get<long long>() >= 0)) {
    if (value.get<unsigned long long>() > static_cast<unsigned long long>(std::numeric_limits<int>::max()))
      throw InputError(path + " is too large (" + describe(value) + ")");
    return value.get<long long>();
  }
  if (value.is_number_integer()) throw InputError(path + " is negative (" + describe(value) + ")");
  throw InputError(path + " must be a non-negative integer (got " + describe(value) + ")");
}

std::vector<double> number_array(const nlohmann::json& object, const std::string& key, std::size_t length,
                                 const std::string& path) {
  const nlohmann::json& array = member(object, key, path);
  const std::string where = path + "." + key;
  if (!array.is_array()) throw InputError(where + " must be an array (got " + std::string(array.type_name()) + ")");
  if (array.size() != length)
    throw InputError(where + " has length " + std::to_string(array.size()) + ", expected " + std::to_string(length));
  std::vector<double> values;
  values.reserve(length);
  for (std::size_t i = 0; i < length; ++i)
    values.push_back(non_negative_number(array[i], where + "[" + std::to_string(i) + "]"));
  return values;
}

}  // namespace rematch::json_reader
