#include "fuzz_util.h"

#include <unistd.h>
#include <xxhash.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "coding.h"
#include "format.h"

namespace recmap::fuzz {
namespace {

std::string* g_scratch = nullptr;

void RemoveScratch() {
  if (g_scratch == nullptr) return;
  std::error_code ec;
  std::filesystem::remove_all(*g_scratch, ec);
}

}  // namespace

void CheckFailed(const char* file, int line, const char* cond,
                 const std::string& msg) {
  std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", file, line, cond,
               msg.c_str());
  std::fflush(stderr);
  RemoveScratch();
  std::abort();
}

const std::string& ScratchDir() {
  if (g_scratch != nullptr) return *g_scratch;
  const char* base = std::getenv("TMPDIR");
  std::string tmpl =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
      "/recmap-fuzz-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  g_scratch = new std::string(tmpl);
  std::atexit(RemoveScratch);
  return *g_scratch;
}

void ClearScratchDir() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(ScratchDir(), ec)) {
    std::filesystem::remove_all(e.path(), ec);
  }
}

void WriteFileOrDie(const std::string& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  f.close();
  FUZZ_CHECK(f.good(), "cannot write " + path);
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  FUZZ_CHECK(f.good(), "cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void RepairChecksums(std::string* image) {
  char* p = image->data();
  const uint64_t size = image->size();
  if (size < FileHeader::kEncodedSize ||
      std::memcmp(p, kFileMagic, sizeof(kFileMagic)) != 0) {
    return;
  }
  // Header checksums are XXH3 over the bytes before the checksum field
  // (docs/FORMAT.md): file header [0, 64), region header [0, 40).
  EncodeFixed64(p + 64, XXH3_64bits(p, 64));
  std::array<uint8_t, 16> uuid;
  std::memcpy(uuid.data(), p + 16, 16);
  const uint64_t rs = DecodeFixed64(p + 32);
  if (rs < kMinRegionSize || rs > kMaxRegionSize || rs % kPageSize != 0) {
    return;
  }
  for (uint64_t off = kFirstRegionOffset, i = 0; off + rs <= size;
       off += rs, ++i) {
    char* r = p + off;
    if (DecodeFixed32(r) != kRegionMagic) continue;
    EncodeFixed64(r + 40, XXH3_64bits(r, 40));
    const uint64_t seed =
        RegionSeed(uuid, static_cast<uint32_t>(i), DecodeFixed64(r + 8));
    char* state = r + kRegionStatePageOffset;
    EncodeFixed64(state + kStateDurableCheck,
                  DurableCheck(DecodeFixed64(state + kStateDurableTail), seed));
    uint64_t pos = kRegionDataOffset;
    while (pos + kRecordHeaderSize <= rs) {
      RecordHeader h;
      if (!h.DecodeFrom(r + pos) || h.type == RecordType::kZero ||
          uint64_t{h.length} > rs - pos - kRecordHeaderSize) {
        // The log may resume at the next page after a page closed by Sync.
        if (pos % kPageSize == 0) break;
        pos = (pos / kPageSize + 1) * kPageSize;
        continue;
      }
      EncodeFixed64(r + pos + kRecordChecksumOffset,
                    RecordChecksum(r + pos, h.length, seed));
      pos += RecordSize(h.length);
    }
  }
}

}  // namespace recmap::fuzz
