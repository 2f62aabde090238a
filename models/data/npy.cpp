#include "models/data/npy.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace rematch::data {
namespace {

static_assert(std::endian::native == std::endian::little, "the .npy reader assumes a little-endian host");

constexpr char kMagic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

struct DTypeInfo {
  DType type;
  const char* name;
  std::size_t size;
};
constexpr DTypeInfo kTypes[] = {
    {DType::f4, "<f4", 4}, {DType::f2, "<f2", 2}, {DType::u1, "|u1", 1}, {DType::i1, "|i1", 1},
    {DType::u2, "<u2", 2}, {DType::i2, "<i2", 2}, {DType::u4, "<u4", 4}, {DType::i4, "<i4", 4},
    {DType::u8, "<u8", 8}, {DType::i8, "<i8", 8},
};

const DTypeInfo& info(DType t) {
  for (const auto& i : kTypes) {
    if (i.type == t) return i;
  }
  throw std::logic_error("unknown dtype");
}

// The header dictionary, a Python literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& name) : s_(text), name_(name) {}

  NpyHeader parse() {
    NpyHeader h;
    bool descr = false, order = false, shape = false;
    expect('{');
    for (;;) {
      skip_space();
      if (peek() == '}') break;
      const std::string key = string();
      expect(':');
      if (key == "descr") {
        once(descr, key);
        h.dtype = dtype(string());
      } else if (key == "fortran_order") {
        once(order, key);
        if (boolean()) fail("Fortran order (column-major) data: only C order is read; save np.ascontiguousarray(x)");
      } else if (key == "shape") {
        once(shape, key);
        h.shape = dims();
      } else {
        fail("unexpected header key '" + key + "'");
      }
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() != '}') fail("malformed header: expected ',' or '}' at byte " + std::to_string(i_));
    }
    ++i_;
    for (; i_ < s_.size(); ++i_) {
      if (s_[i_] != ' ' && s_[i_] != '\n' && s_[i_] != '\0') fail("malformed header: text after the dictionary");
    }
    if (!descr) fail("malformed header: no 'descr'");
    if (!order) fail("malformed header: no 'fortran_order'");
    if (!shape) fail("malformed header: no 'shape'");
    return h;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw DataError(name_ + ": " + what); }
  void skip_space() {
    while (i_ < s_.size() && s_[i_] == ' ') ++i_;
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void expect(char c) {
    skip_space();
    if (peek() != c) fail(std::string("malformed header: expected '") + c + "' at byte " + std::to_string(i_));
    ++i_;
  }
  void once(bool& seen, const std::string& key) {
    if (seen) fail("malformed header: '" + key + "' twice");
    seen = true;
  }
  std::string string() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') fail("malformed header: expected a quoted string at byte " + std::to_string(i_));
    const std::size_t end = s_.find(quote, i_ + 1);
    if (end == std::string_view::npos) fail("malformed header: unterminated string");
    std::string out(s_.substr(i_ + 1, end - i_ - 1));
    i_ = end + 1;
    return out;
  }
  bool boolean() {
    skip_space();
    if (s_.substr(i_, 4) == "True") return i_ += 4, true;
    if (s_.substr(i_, 5) == "False") return i_ += 5, false;
    fail("malformed header: fortran_order must be True or False");
  }
  DType dtype(const std::string& d) {
    for (const auto& t : kTypes) {
      if (d == t.name) return t.type;
    }
    // numpy writes '|' for one-byte types but accepts '<' and '=' there; so do we.
    if (d == "<u1" || d == "=u1") return DType::u1;
    if (d == "<i1" || d == "=i1") return DType::i1;
    if (!d.empty() && d[0] == '>') fail("dtype '" + d + "' is big-endian: save it as little-endian (x.astype('<" + d.substr(1) + "'))");
    fail("unsupported dtype '" + d + "' (samples: <f4, <f2 or |u1; labels: an integer type)");
  }
  std::vector<std::int64_t> dims() {
    expect('(');
    std::vector<std::int64_t> out;
    for (;;) {
      skip_space();
      if (peek() == ')') break;
      if (peek() < '0' || peek() > '9') fail("malformed header: shape must be a tuple of non-negative integers");
      std::int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (v > (std::numeric_limits<std::int64_t>::max() - 9) / 10) fail("shape dimension too large");
        v = v * 10 + (peek() - '0');
        ++i_;
      }
      if (out.size() == kNpyMaxDims) fail("more than " + std::to_string(kNpyMaxDims) + " dimensions");
      out.push_back(v);
      skip_space();
      if (peek() == ',') {
        ++i_;
      } else if (peek() != ')') {
        fail("malformed header: expected ',' or ')' in the shape");
      }
    }
    ++i_;
    return out;
  }

  std::string_view s_;
  const std::string& name_;
  std::size_t i_ = 0;
};

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  std::uint32_t bits = 0;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000 | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa != 0) {  // subnormal: normalise
    exponent = 113;
    while ((mantissa & 0x400) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
  } else {
    bits = sign;
  }
  return std::bit_cast<float>(bits);
}

template <typename T>
std::int64_t stored_integer(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::is_same_v<T, std::uint64_t>) {
    return v > std::uint64_t(std::numeric_limits<std::int64_t>::max()) ? -1 : std::int64_t(v);
  } else {
    return std::int64_t(v);
  }
}

}  // namespace

std::string shape_text(std::span<const std::int64_t> shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::string dtype_name(DType t) { return info(t).name; }
std::size_t dtype_size(DType t) { return info(t).size; }
bool is_integer(DType t) { return t != DType::f4 && t != DType::f2; }

std::int64_t NpyHeader::elements() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;  // checked against overflow when parsed
  return n;
}

std::int64_t NpyHeader::row_elements() const {
  std::int64_t n = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

NpyHeader read_npy_header(const ReadAt& read, std::uint64_t size, const std::string& name) {
  auto fail = [&](const std::string& what) -> void { throw DataError(name + ": " + what); };
  unsigned char pre[12];
  if (size < 10) fail("not a .npy file (" + std::to_string(size) + " bytes, shorter than the magic and version)");
  read(0, pre, 10);
  if (std::memcmp(pre, kMagic, sizeof kMagic) != 0) fail("not a .npy file (wrong magic; expected \\x93NUMPY)");
  const int major = pre[6], minor = pre[7];
  if (major < 1 || major > 3 || minor != 0) {
    fail("unsupported .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
         " (1.0, 2.0 and 3.0 are read)");
  }
  std::uint64_t length = 0, start = 10;
  if (major == 1) {
    length = std::uint64_t(pre[8]) | std::uint64_t(pre[9]) << 8;
  } else {
    if (size < 12) fail("truncated header");
    read(10, pre + 10, 2);
    length = std::uint64_t(pre[8]) | std::uint64_t(pre[9]) << 8 | std::uint64_t(pre[10]) << 16 |
             std::uint64_t(pre[11]) << 24;
    start = 12;
  }
  if (length > kNpyMaxHeader) fail("header length " + std::to_string(length) + " exceeds the limit of " + std::to_string(kNpyMaxHeader) + " bytes");
  if (start + length > size) fail("truncated header: it announces " + std::to_string(length) + " bytes, the file has " + std::to_string(size - start) + " after the preamble");
  std::string text(length, '\0');
  read(start, text.data(), length);
  NpyHeader h = HeaderParser(text, name).parse();
  h.data_offset = start + length;
  std::uint64_t bytes = dtype_size(h.dtype);
  for (std::int64_t d : h.shape) {
    if (__builtin_mul_overflow(bytes, std::uint64_t(d), &bytes) || bytes > std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
      fail("shape " + shape_text(h.shape) + " is too large (its byte count overflows)");
    }
  }
  h.data_bytes = bytes;
  const std::uint64_t have = size - h.data_offset;
  if (have < bytes) {
    fail("truncated data: shape " + shape_text(h.shape) + " of " + dtype_name(h.dtype) + " needs " +
         std::to_string(bytes) + " bytes, the file holds " + std::to_string(have));
  }
  if (have > bytes) {
    fail(std::to_string(have - bytes) + " bytes after the data of shape " + shape_text(h.shape) + " of " + dtype_name(h.dtype));
  }
  return h;
}

void to_float(DType t, const void* stored, std::size_t count, float* out) {
  const auto* p = static_cast<const unsigned char*>(stored);
  switch (t) {
    case DType::f4:
      std::memcpy(out, p, count * sizeof(float));
      return;
    case DType::f2:
      for (std::size_t i = 0; i < count; ++i) {
        std::uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = half_to_float(h);
      }
      return;
    case DType::u1:
      // The same value as Fashion-MNIST's pixels (Dataset::intensity).
      for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<float>(p[i]) / 255.0f;
      return;
    default:
      throw std::logic_error("to_float: not a sample dtype");
  }
}

std::string npy_header_bytes(DType t, std::span<const std::int64_t> shape) {
  std::string dict = "{'descr': '" + dtype_name(t) + "', 'fortran_order': False, 'shape': " + shape_text(shape) + ", }";
  // numpy pads with spaces and a final newline so that the data starts on a 64-byte boundary.
  const bool v1 = (10 + dict.size() + 1 + 63) / 64 * 64 - 10 <= 65535;
  const std::size_t preamble = v1 ? 10 : 12;
  const std::size_t total = (preamble + dict.size() + 1 + 63) / 64 * 64;
  dict.append(total - preamble - dict.size() - 1, ' ');
  dict += '\n';
  std::string out(kMagic, sizeof kMagic);
  out += char(v1 ? 1 : 2);
  out += char(0);
  const std::size_t n = dict.size();
  out += char(n & 0xff);
  out += char((n >> 8) & 0xff);
  if (!v1) {
    out += char((n >> 16) & 0xff);
    out += char((n >> 24) & 0xff);
  }
  return out + dict;
}

NpyFile::NpyFile(std::string path) : file_(std::move(path), "a .npy file") {
  header_ = read_npy_header([this](std::uint64_t o, void* out, std::size_t n) { file_.read_at(o, out, n); },
                            file_.size(), file_.path());
}

void NpyFile::read_rows(std::int64_t begin, std::int64_t count, float* out) const {
  if (begin < 0 || count < 0 || begin > rows() - count) {
    fail("rows " + std::to_string(begin) + ".." + std::to_string(begin + count) + " requested of " + std::to_string(rows()));
  }
  if (is_integer(header_.dtype) && header_.dtype != DType::u1) fail("dtype " + dtype_name(header_.dtype) + " holds labels, not samples");
  const std::size_t values = std::size_t(count * row_elements());
  const std::size_t size = dtype_size(header_.dtype);
  const std::uint64_t offset = header_.data_offset + std::uint64_t(begin * row_elements()) * size;
  if (header_.dtype == DType::f4) {
    file_.read_at(offset, out, values * size);
  } else {
    std::vector<unsigned char> stored(values * size);
    file_.read_at(offset, stored.data(), stored.size());
    to_float(header_.dtype, stored.data(), values, out);
  }
  for (std::size_t i = 0; i < values; ++i) {
    if (!std::isfinite(out[i])) {
      fail("row " + std::to_string(begin + std::int64_t(i) / row_elements()) + " holds a non-finite value");
    }
  }
}

std::vector<std::int64_t> NpyFile::read_labels(std::int64_t limit) const {
  if (header_.shape.size() != 1) fail("labels must be a 1-d array, the shape is " + shape_text(header_.shape));
  if (!is_integer(header_.dtype)) fail("labels must be integers, the dtype is " + dtype_name(header_.dtype));
  const std::size_t n = std::size_t(rows()), size = dtype_size(header_.dtype);
  std::vector<unsigned char> stored(n * size);
  file_.read_at(header_.data_offset, stored.data(), stored.size());
  std::vector<std::int64_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char* p = stored.data() + i * size;
    std::int64_t v = 0;
    switch (header_.dtype) {
      case DType::u1: v = stored_integer<std::uint8_t>(p); break;
      case DType::i1: v = stored_integer<std::int8_t>(p); break;
      case DType::u2: v = stored_integer<std::uint16_t>(p); break;
      case DType::i2: v = stored_integer<std::int16_t>(p); break;
      case DType::u4: v = stored_integer<std::uint32_t>(p); break;
      case DType::i4: v = stored_integer<std::int32_t>(p); break;
      case DType::u8: v = stored_integer<std::uint64_t>(p); break;
      case DType::i8: v = stored_integer<std::int64_t>(p); break;
      default: break;
    }
    if (v < 0 || v >= limit) {
      fail("label " + std::to_string(v) + " at index " + std::to_string(i) + " is out of range [0, " + std::to_string(limit) + ")");
    }
    out[i] = v;
  }
  return out;
}

void require_samples(const NpyFile& file, std::span<const std::int64_t> shape) {
  const NpyHeader& h = file.header();
  if (is_integer(h.dtype) && h.dtype != DType::u1) {
    file.fail("dtype " + dtype_name(h.dtype) + " is not a sample type (<f4, <f2 or |u1)");
  }
  if (h.shape.empty()) file.fail("a 0-d array holds no samples");
  const auto row = h.row_shape();
  if (!shape.empty() && !std::ranges::equal(row, shape)) {
    file.fail("rows of shape " + shape_text(row) + " (the array is " + shape_text(h.shape) + "), the model's input is " + shape_text(shape));
  }
}

void write_npy(const std::string& path, std::span<const std::int64_t> shape, std::span<const float> values) {
  NpyWriter w(path, {shape.begin(), shape.end()});
  w.append(values);
  w.commit();
}

NpyWriter::NpyWriter(const std::string& path, std::vector<std::int64_t> shape) : shape_(std::move(shape)) {
  std::uint64_t n = 1;
  for (std::int64_t d : shape_) {
    if (d < 0 || __builtin_mul_overflow(n, std::uint64_t(d), &n)) throw DataError(path + ": invalid shape " + shape_text(shape_));
  }
  const std::string header = npy_header_bytes(DType::f4, shape_);
  as_data_error([&] {
    file_ = std::make_unique<io::AtomicFile>(path);
    file_->write(header.data(), header.size());
  });
  expected_ = header.size() + n * sizeof(float);
}

NpyWriter::~NpyWriter() = default;

void NpyWriter::append(std::span<const float> rows) {
  if (file_->size() + rows.size_bytes() > expected_) throw DataError(file_->path() + ": more rows written than the shape " + shape_text(shape_) + " holds");
  as_data_error([&] { file_->write(rows.data(), rows.size_bytes()); });
}

void NpyWriter::commit() {
  if (file_->size() != expected_) throw DataError(file_->path() + ": fewer rows written than the shape " + shape_text(shape_) + " holds");
  as_data_error([&] { file_->commit(); });
}

}  // namespace rematch::data
