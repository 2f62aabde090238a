#include "scheduler/io/json_reader.hpp"

#include <cmath>

namespace rematch::json_reader {

nlohmann::json parse(const std::string& text, const std::string& what) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
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
  if (v < 0) throw InputError(path + " is negative (" + value.dump() + ")");
  return v;
}

long long non_negative_integer(const nlohmann::json& value, const std::string& path) {
  if (value.is_number_unsigned() || (value.is_number_integer() && value.get<long long>() >= 0)) {
    if (value.is_number_unsigned() && value.get<unsigned long long>() > (1ULL << 31))
      throw InputError(path + " is too large (" + value.dump() + ")");
    return value.get<long long>();
  }
  if (value.is_number_integer()) throw InputError(path + " is negative (" + value.dump() + ")");
  throw InputError(path + " must be a non-negative integer (got " + value.dump() + ")");
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
