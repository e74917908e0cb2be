// Helpers shared by recmap's fuzz harnesses: reading structured choices out
// of the fuzzer's bytes, a per-process scratch directory, invariant checks
// that abort (so libFuzzer records the input), and the checksum repair that
// lets mutated store bytes reach the code behind the checksums.
#ifndef RECMAP_FUZZ_FUZZ_UTIL_H_
#define RECMAP_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

// Checks an invariant of the code under test. On failure prints the
// condition and message and aborts: libFuzzer and the replay driver both
// report the input that got there.
#define FUZZ_CHECK(cond, msg)                                                 \
  do {                                                                        \
    if (!(cond)) ::recmap::fuzz::CheckFailed(__FILE__, __LINE__, #cond, msg); \
  } while (0)

namespace recmap::fuzz {

[[noreturn]] void CheckFailed(const char* file, int line, const char* cond,
                              const std::string& msg);

// Consumes an input byte string front to back; past the end every read
// yields zeros, so every input decodes to something.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  size_t remaining() const { return empty() ? 0 : size_ - pos_; }
  uint8_t U8() { return empty() ? 0 : data_[pos_++]; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | U8() << 8); }
  uint32_t U32() { return U16() | uint32_t{U16()} << 16; }
  uint64_t U64() { return U32() | uint64_t{U32()} << 32; }
  // A value in [0, n); n > 0.
  uint32_t Below(uint32_t n) { return U32() % n; }
  // Up to `n` of the next bytes, as a view.
  std::string_view Bytes(size_t n) {
    n = n < remaining() ? n : remaining();
    std::string_view v(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return v;
  }
  std::string_view Rest() { return Bytes(remaining()); }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// A directory private to this process under $TMPDIR (or /tmp), created on
// first use and removed with its contents when the process exits normally.
const std::string& ScratchDir();
// Removes every file in ScratchDir() (between inputs).
void ClearScratchDir();

void WriteFileOrDie(const std::string& path, std::string_view data);
std::string ReadFileOrDie(const std::string& path);

// Rewrites, in a store image, every checksum the format defines: the file
// header's, each whole region's header checksum (with the uuid and index of
// that position), each record checksum along each region's log (walking
// structurally valid headers), and the durable-tail check words. Used so
// that mutations of a store file exercise recovery and indexing rather
// than stopping at the first checksum. Never reads outside `image`.
void RepairChecksums(std::string* image);

}  // namespace recmap::fuzz

#endif  // RECMAP_FUZZ_FUZZ_UTIL_H_
