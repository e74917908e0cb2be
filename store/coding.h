// Little-endian, bounds-checked encoding helpers: the only place in recmap
// that turns integers into bytes and back. Everything read from a store file
// goes through Decoder, which never reads past the span it was given.
#ifndef RECMAP_STORE_CODING_H_
#define RECMAP_STORE_CODING_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace recmap {

// Unchecked stores: the caller guarantees `dst` has room (writers size their
// buffers from the format's constants before calling these). On a
// little-endian host each is one unaligned store (the append path encodes a
// record header per record); elsewhere, bytes in little-endian order.
inline void EncodeFixed32(char* dst, uint32_t v) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(dst, &v, sizeof(v));
  } else {
    for (int i = 0; i < 4; ++i) dst[i] = static_cast<char>(v >> (8 * i));
  }
}
inline void EncodeFixed64(char* dst, uint64_t v) {
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(dst, &v, sizeof(v));
  } else {
    for (int i = 0; i < 8; ++i) dst[i] = static_cast<char>(v >> (8 * i));
  }
}
// Unchecked loads, for callers that have already checked the bounds.
inline uint32_t DecodeFixed32(const char* p) {
  if constexpr (std::endian::native == std::endian::little) {
    uint32_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  } else {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return uint32_t{u[0]} | uint32_t{u[1]} << 8 | uint32_t{u[2]} << 16 |
           uint32_t{u[3]} << 24;
  }
}
inline uint64_t DecodeFixed64(const char* p) {
  if constexpr (std::endian::native == std::endian::little) {
    uint64_t v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  } else {
    return uint64_t{DecodeFixed32(p)} | uint64_t{DecodeFixed32(p + 4)} << 32;
  }
}

// Appending encoders, for building byte strings (tests, index files, tools).
inline void PutFixed8(std::string* dst, uint8_t v) {
  dst->push_back(static_cast<char>(v));
}
inline void PutFixed32(std::string* dst, uint32_t v) {
  char buf[4];
  EncodeFixed32(buf, v);
  dst->append(buf, 4);
}
inline void PutFixed64(std::string* dst, uint64_t v) {
  char buf[8];
  EncodeFixed64(buf, v);
  dst->append(buf, 8);
}

// A cursor over an untrusted byte span. Every Get* checks that the bytes it
// needs lie inside the span; on failure it returns false and leaves the
// cursor where it was, so the caller can report the offset of the problem.
class Decoder {
 public:
  Decoder(const char* data, size_t size) : data_(data), size_(size) {}
  explicit Decoder(std::string_view s) : Decoder(s.data(), s.size()) {}

  size_t position() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  [[nodiscard]] bool GetFixed8(uint8_t* v) {
    if (remaining() < 1) return false;
    *v = static_cast<uint8_t>(data_[pos_]);
    pos_ += 1;
    return true;
  }
  [[nodiscard]] bool GetFixed32(uint32_t* v) {
    if (remaining() < 4) return false;
    *v = DecodeFixed32(data_ + pos_);
    pos_ += 4;
    return true;
  }
  [[nodiscard]] bool GetFixed64(uint64_t* v) {
    if (remaining() < 8) return false;
    *v = DecodeFixed64(data_ + pos_);
    pos_ += 8;
    return true;
  }
  // Copies `n` bytes into `dst`.
  [[nodiscard]] bool GetBytes(void* dst, size_t n) {
    if (remaining() < n) return false;
    std::memcpy(dst, data_ + pos_, n);
    pos_ += n;
    return true;
  }
  // A view of the next `n` bytes, without copying.
  [[nodiscard]] bool GetView(size_t n, std::string_view* v) {
    if (remaining() < n) return false;
    *v = std::string_view(data_ + pos_, n);
    pos_ += n;
    return true;
  }
  [[nodiscard]] bool Skip(size_t n) {
    if (remaining() < n) return false;
    pos_ += n;
    return true;
  }

 private:
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace recmap

#endif  // RECMAP_STORE_CODING_H_
