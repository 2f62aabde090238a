#include "models/data/npz.hpp"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "models/data/npy.hpp"

namespace rematch::data {
namespace {

constexpr std::uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50,
                        kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;
constexpr std::size_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kLocator64Size = 20, kEnd64Size = 56;
constexpr std::uint32_t kMax32 = 0xffffffff;
constexpr std::uint16_t kDosDate = (0 << 9) | (1 << 5) | 1;  // 1980-01-01: archives are reproducible

std::uint32_t crc32_of(std::uint32_t crc, const void* bytes, std::size_t n) {
  const auto* p = static_cast<const Bytef*>(bytes);
  while (n > 0) {
    const auto chunk = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    crc = static_cast<std::uint32_t>(::crc32(crc, p, chunk));
    p += chunk;
    n -= chunk;
  }
  return crc;
}

class Out {
 public:
  void u16(std::uint64_t v) { put(v, 2); }
  void u32(std::uint64_t v) { put(v, 4); }
  void bytes(const std::string& s) { b_ += s; }
  const std::string& str() const { return b_; }

 private:
  void put(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b_ += char((v >> (8 * i)) & 0xff);
  }
  std::string b_;
};

std::uint64_t le(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

}  // namespace

void write_npz(const std::string& path, std::span<const NpzArray> arrays) {
  as_data_error([&] {
    io::AtomicFile file(path);
    Out central;
    for (const NpzArray& a : arrays) {
      std::uint64_t n = 1;
      for (std::int64_t d : a.shape) {
        if (d < 0 || __builtin_mul_overflow(n, std::uint64_t(d), &n)) throw DataError(path + ": member " + a.name + " has an invalid shape");
      }
      if (n != a.values.size()) throw DataError(path + ": member " + a.name + " holds a different number of values than its shape");
      const std::string name = a.name + ".npy";
      const std::string header = npy_header_bytes(DType::f4, a.shape);
      const std::uint64_t size = header.size() + a.values.size() * sizeof(float);
      const std::uint64_t offset = file.size();
      if (size >= kMax32 || offset >= kMax32 || name.size() > 0xffff) {
        throw DataError(path + ": member " + a.name + " exceeds the 4 GiB a plain ZIP member may hold");
      }
      const std::uint32_t crc =
          crc32_of(crc32_of(0, header.data(), header.size()), a.values.data(), a.values.size() * sizeof(float));
      Out local;
      local.u32(kLocalSig);
      local.u16(20);  // version needed: 2.0
      local.u16(0);   // flags
      local.u16(0);   // stored
      local.u16(0);
      local.u16(kDosDate);
      local.u32(crc);
      local.u32(size);
      local.u32(size);
      local.u16(name.size());
      local.u16(0);
      local.bytes(name);
      file.write(local.str().data(), local.str().size());
      file.write(header.data(), header.size());
      file.write(a.values.data(), a.values.size() * sizeof(float));

      central.u32(kCentralSig);
      central.u16(20);  // made by: MS-DOS attributes, 2.0
      central.u16(20);
      central.u16(0);
      central.u16(0);
      central.u16(0);
      central.u16(kDosDate);
      central.u32(crc);
      central.u32(size);
      central.u32(size);
      central.u16(name.size());
      central.u16(0);  // extra
      central.u16(0);  // comment
      central.u16(0);  // disk
      central.u16(0);  // internal attributes
      central.u32(0);  // external attributes
      central.u32(offset);
      central.bytes(name);
    }
    const std::uint64_t central_offset = file.size();
    if (arrays.size() >= 0xffff || central_offset + central.str().size() >= kMax32) {
      throw DataError(path + ": more than 65535 members or 4 GiB, beyond a plain ZIP archive");
    }
    Out end;
    end.u32(kEndSig);
    end.u16(0);
    end.u16(0);
    end.u16(arrays.size());
    end.u16(arrays.size());
    end.u32(central.str().size());
    end.u32(central_offset);
    end.u16(0);
    file.write(central.str().data(), central.str().size());
    file.write(end.str().data(), end.str().size());
    file.commit();
  });
}

NpzReader::NpzReader(std::string path) : file_(std::move(path), "a .npz file") { index(); }

void NpzReader::index() {
  const std::uint64_t size = file_.size();
  if (size < kEndSize) fail("not a .npz (ZIP) file: too short for an end record");

  // The end record sits in the last 22 + 65535 (comment) bytes.
  const std::size_t tail_size = std::size_t(std::min<std::uint64_t>(size, kEndSize + 0xffff));
  std::vector<unsigned char> tail(tail_size);
  file_.read_at(size - tail_size, tail.data(), tail_size);
  std::int64_t at = -1;
  for (std::int64_t i = std::int64_t(tail_size - kEndSize); i >= 0; --i) {
    const unsigned char* p = tail.data() + i;
    if (le(p, 4) == kEndSig && std::uint64_t(i) + kEndSize + le(p + 20, 2) == tail_size) {
      at = i;
      break;
    }
  }
  if (at < 0) fail("not a .npz (ZIP) file: no end of central directory record");
  const unsigned char* e = tail.data() + at;
  const std::uint64_t end_offset = size - tail_size + std::uint64_t(at);
  if (le(e + 4, 2) != 0 || le(e + 6, 2) != 0) fail("multi-disk archives are not read");
  std::uint64_t entries = le(e + 10, 2), cd_size = le(e + 12, 4), cd_offset = le(e + 16, 4);
  std::uint64_t cd_limit = end_offset;
  if (entries == 0xffff || cd_size == kMax32 || cd_offset == kMax32) {
    if (end_offset < kLocator64Size) fail("ZIP64 locator missing");
    unsigned char loc[kLocator64Size];
    file_.read_at(end_offset - kLocator64Size, loc, sizeof loc);
    if (le(loc, 4) != kLocator64Sig) fail("ZIP64 locator missing");
    const std::uint64_t end64 = le(loc + 8, 8);
    if (end64 > end_offset - kLocator64Size || end_offset - kLocator64Size - end64 < kEnd64Size) fail("ZIP64 end record out of bounds");
    unsigned char r[kEnd64Size];
    file_.read_at(end64, r, sizeof r);
    if (le(r, 4) != kEnd64Sig) fail("ZIP64 end record has a wrong signature");
    entries = le(r + 32, 8);
    cd_size = le(r + 40, 8);
    cd_offset = le(r + 48, 8);
    cd_limit = end64;
  }
  if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset) fail("central directory out of bounds (truncated or corrupt archive)");
  if (entries > cd_size / kCentralSize) fail("central directory announces " + std::to_string(entries) + " members, too many for its " + std::to_string(cd_size) + " bytes");
  std::vector<unsigned char> cd(cd_size);
  file_.read_at(cd_offset, cd.data(), cd.size());
  std::size_t pos = 0;
  for (std::uint64_t k = 0; k < entries; ++k) {
    if (cd.size() - pos < kCentralSize) fail("central directory truncated");
    const unsigned char* c = cd.data() + pos;
    if (le(c, 4) != kCentralSig) fail("central directory entry " + std::to_string(k) + " has a wrong signature");
    const std::uint64_t flags = le(c + 8, 2), method = le(c + 10, 2);
    Member m;
    m.crc = std::uint32_t(le(c + 16, 4));
    std::uint64_t csize = le(c + 20, 4), usize = le(c + 24, 4);
    const std::size_t name_len = le(c + 28, 2), extra_len = le(c + 30, 2), comment_len = le(c + 32, 2);
    m.local_offset = le(c + 42, 4);
    if (cd.size() - pos - kCentralSize < name_len + extra_len + comment_len) fail("central directory truncated");
    m.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    // ZIP64 extra field: the 64-bit values of the fields saturated above, in this order.
    const unsigned char* x = c + kCentralSize + name_len;
    for (std::size_t xi = 0; xi + 4 <= extra_len;) {
      const std::uint64_t id = le(x + xi, 2), len = le(x + xi + 2, 2);
      if (xi + 4 + len > extra_len) fail("member " + m.name + ": malformed extra field");
      if (id == 1) {
        std::size_t f = xi + 4;
        for (std::uint64_t* v : {&usize, &csize, &m.local_offset}) {
          if (*v != kMax32) continue;
          if (f + 8 > xi + 4 + len) fail("member " + m.name + ": malformed ZIP64 extra field");
          *v = le(x + f, 8);
          f += 8;
        }
      }
      xi += 4 + len;
    }
    pos += kCentralSize + name_len + extra_len + comment_len;
    if (flags & 1) fail("member " + m.name + " is encrypted");
    if (method != 0) fail("member " + m.name + " is compressed (method " + std::to_string(method) + "): write it with np.savez, not np.savez_compressed");
    if (csize != usize) fail("member " + m.name + ": stored sizes disagree");
    if (m.name.size() < 4 || m.name.substr(m.name.size() - 4) != ".npy") fail("member " + m.name + " is not a .npy array");
    m.name.resize(m.name.size() - 4);
    m.size = usize;
    if (m.local_offset > cd_offset || m.size > cd_offset - m.local_offset) fail("member " + m.name + ".npy lies outside the archive's data");
    if (contains(m.name)) fail("member " + m.name + ".npy appears twice");
    members_.push_back(std::move(m));
  }
}

std::vector<std::string> NpzReader::names() const {
  std::vector<std::string> out;
  for (const Member& m : members_) out.push_back(m.name);
  return out;
}

bool NpzReader::contains(const std::string& name) const {
  return std::ranges::any_of(members_, [&](const Member& m) { return m.name == name; });
}

const NpzReader::Member& NpzReader::member(const std::string& name) const {
  for (const Member& m : members_) {
    if (m.name == name) return m;
  }
  fail("no member " + name + ".npy");
}

NpzArray NpzReader::read(const std::string& name) const {
  const Member& m = member(name);
  const std::string where = file_.path() + ": member " + name + ".npy";
  unsigned char local[kLocalSize];
  if (m.local_offset + kLocalSize > file_.size()) fail("member " + name + ".npy: local header out of bounds");
  file_.read_at(m.local_offset, local, sizeof local);
  if (le(local, 4) != kLocalSig) throw DataError(where + ": local header has a wrong signature");
  const std::uint64_t data = m.local_offset + kLocalSize + le(local + 26, 2) + le(local + 28, 2);
  if (data > file_.size() || m.size > file_.size() - data) throw DataError(where + ": data runs past the end of the file");
  std::vector<unsigned char> bytes(m.size);
  file_.read_at(data, bytes.data(), bytes.size());
  const std::uint32_t crc = crc32_of(0, bytes.data(), bytes.size());
  if (crc != m.crc) {
    throw DataError(where + ": CRC-32 mismatch (the archive records " + std::to_string(m.crc) + ", the data has " +
                    std::to_string(crc) + "): the file is corrupt");
  }
  const NpyHeader h = read_npy_header(
      [&](std::uint64_t o, void* out, std::size_t n) { std::memcpy(out, bytes.data() + o, n); }, bytes.size(), where);
  if (h.dtype != DType::f4 && h.dtype != DType::f2) {
    throw DataError(where + ": dtype " + dtype_name(h.dtype) + ", weights are <f4 (or <f2)");
  }
  NpzArray a{name, h.shape, std::vector<float>(std::size_t(h.elements()))};
  to_float(h.dtype, bytes.data() + h.data_offset, a.values.size(), a.values.data());
  for (std::size_t i = 0; i < a.values.size(); ++i) {
    if (!std::isfinite(a.values[i])) throw DataError(where + ": non-finite value at flat index " + std::to_string(i));
  }
  return a;
}

}  // namespace rematch::data
