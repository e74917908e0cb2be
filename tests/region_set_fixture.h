// A store file laid out by hand, with the objects that work on it below
// StoreRep: its header, mapping, Durability and RegionSet. For the unit
// tests of those classes.
#ifndef RECMAP_TESTS_REGION_SET_FIXTURE_H_
#define RECMAP_TESTS_REGION_SET_FIXTURE_H_

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "coding.h"
#include "durability.h"
#include "format.h"
#include "mapping.h"
#include "region_set.h"
#include "test_util.h"

namespace recmap::testing {

class RegionSetFixture {
 public:
  static constexpr uint64_t kRegionSize = 64 << 10;

  // A file of `regions` unformatted (zero) regions, room for `max`.
  explicit RegionSetFixture(uint32_t regions, uint32_t max = 8)
      : path_(dir_.File("store")) {
    header_.region_size = kRegionSize;
    for (int i = 0; i < 16; ++i) header_.uuid[i] = static_cast<uint8_t>(i + 1);
    std::string bytes(kFirstRegionOffset + regions * kRegionSize, '\0');
    header_.EncodeTo(bytes.data());
    EncodeFixed64(bytes.data() + kSharedPageOffset + kSharedRegionCount,
                  regions);
    WriteFile(path_, bytes);
    fd_ = ::open(path_.c_str(), O_RDWR);
    REQUIRE(fd_ >= 0);
    REQUIRE(map_.Reserve(kFirstRegionOffset + max * kRegionSize).ok());
    REQUIRE(map_.EnsureMapped(fd_, kFirstRegionOffset + regions * kRegionSize,
                              false, path_)
                .ok());
    durability_.Init(fd_, &path_);
    RegionSet::Config c;
    c.map = &map_;
    c.fd = fd_;
    c.path = &path_;
    c.header = &header_;
    c.durability = &durability_;
    set_.Init(c, max);
  }
  ~RegionSetFixture() { ::close(fd_); }

  // Adds the entries of the file's regions as an open would.
  void LoadAll(uint32_t regions) {
    set_.EnsureEntries(regions);
    for (uint32_t i = 0; i < regions; ++i)
      REQUIRE(set_.LoadHeader(i, /*allow_unformatted=*/true).ok());
    set_.SetKnown(regions);
  }

  // Writes a record at region i's committed tail (formatted region) and
  // publishes it; returns its region-relative offset.
  uint64_t Append(uint32_t i, RecordType type, uint64_t id, uint64_t sequence,
                  const std::string& value) {
    const RegionRef& r = set_[i].ref;
    const uint64_t at = r.committed_tail().load();
    RecordHeader h;
    h.type = type;
    h.id = id;
    h.sequence = sequence;
    h.length = static_cast<uint32_t>(value.size());
    h.EncodeTo(r.base + at);
    std::memcpy(r.base + at + kRecordHeaderSize, value.data(), value.size());
    h.checksum = RecordChecksum(r.base + at, h.length, r.seed);
    h.EncodeTo(r.base + at);
    r.committed_tail().store(at + RecordSize(h.length));
    return at;
  }

  const std::string& path() const { return path_; }
  int fd() const { return fd_; }
  char* base() const { return map_.base(); }
  Durability& durability() { return durability_; }
  RegionSet& set() { return set_; }
  const FileHeader& header() const { return header_; }

 private:
  TempDir dir_;
  std::string path_;
  FileHeader header_;
  int fd_ = -1;
  Mapping map_;
  Durability durability_;
  RegionSet set_;
};

}  // namespace recmap::testing

#endif  // RECMAP_TESTS_REGION_SET_FIXTURE_H_
