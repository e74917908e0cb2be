#include "coding.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <string>

namespace recmap {
namespace {

TEST_CASE("Fixed32 and Fixed64 round-trip little-endian", "[coding]") {
  std::string s;
  PutFixed32(&s, 0x04030201u);
  PutFixed64(&s, 0x0807060504030201ull);
  PutFixed8(&s, 0xAB);
  REQUIRE(s.size() == 13);
  CHECK(s.substr(0, 4) == std::string("\x01\x02\x03\x04", 4));
  CHECK(s.substr(4, 8) == std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  Decoder d(s);
  uint32_t a = 0;
  uint64_t b = 0;
  uint8_t c = 0;
  REQUIRE(d.GetFixed32(&a));
  REQUIRE(d.GetFixed64(&b));
  REQUIRE(d.GetFixed8(&c));
  CHECK(a == 0x04030201u);
  CHECK(b == 0x0807060504030201ull);
  CHECK(c == 0xAB);
  CHECK(d.remaining() == 0);
}

TEST_CASE("extreme values round-trip", "[coding]") {
  for (uint64_t v :
       {uint64_t{0}, uint64_t{1}, std::numeric_limits<uint64_t>::max(),
        uint64_t{1} << 63, uint64_t{0x00FF00FF00FF00FF}}) {
    char buf[8];
    EncodeFixed64(buf, v);
    CHECK(DecodeFixed64(buf) == v);
    EncodeFixed32(buf, static_cast<uint32_t>(v));
    CHECK(DecodeFixed32(buf) == static_cast<uint32_t>(v));
  }
}

TEST_CASE("Decoder refuses to read past its span and does not move",
          "[coding]") {
  const std::string s("\x01\x02\x03", 3);
  Decoder d(s);
  uint32_t a = 7;
  uint64_t b = 7;
  CHECK_FALSE(d.GetFixed32(&a));
  CHECK(a == 7);
  CHECK_FALSE(d.GetFixed64(&b));
  CHECK(d.position() == 0);
  std::string_view v;
  CHECK_FALSE(d.GetView(4, &v));
  REQUIRE(d.GetView(2, &v));
  CHECK(v == std::string_view("\x01\x02", 2));
  CHECK_FALSE(d.Skip(2));
  REQUIRE(d.Skip(1));
  uint8_t c;
  CHECK_FALSE(d.GetFixed8(&c));
  char out[4];
  CHECK_FALSE(d.GetBytes(out, 1));
  CHECK(d.remaining() == 0);
}

TEST_CASE("Decoder over an empty span fails every read", "[coding]") {
  Decoder d(nullptr, 0);
  uint8_t a;
  uint32_t b;
  uint64_t c;
  CHECK_FALSE(d.GetFixed8(&a));
  CHECK_FALSE(d.GetFixed32(&b));
  CHECK_FALSE(d.GetFixed64(&c));
  CHECK(d.Skip(0));
}

}  // namespace
}  // namespace recmap
