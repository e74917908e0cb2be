// Issue 11, defects 4-6, from outside: the recmap binary run through a
// shell and the public API. Commands validate before they write; read-only
// commands read a last region cut short, or say (exit 3) what they cannot
// read; exit codes and docs/CLI.md agree.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>

#include "recmap/store.h"
#include "test_util.h"

namespace recmap {
namespace {

using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;
using testing::ToolPath;
using testing::WriteFile;

struct Result {
  int rc = -1;
  std::string out;
  std::string err;
};

std::string Q(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

Result Tool(const TempDir& dir, const std::string& args,
            const std::string& stdin_path = "/dev/null") {
  Result r;
  const std::string err_path = dir.File("stderr.txt");
  r.rc = RunCommand(
      Q(ToolPath()) + " " + args + " <" + Q(stdin_path) + " 2>" + Q(err_path),
      &r.out);
  r.err = ReadFile(err_path);
  INFO("recmap " << args << "\nrc=" << r.rc << "\nstderr: " << r.err);
  return r;
}

TEST_CASE("cli: a put rejected as too large leaves the file untouched",
          "[cli][issue11]") {
  TempDir dir;
  const std::string db = dir.File("s.rmap");
  REQUIRE(Tool(dir, "create " + Q(db) + " --region-size 65536").rc == 0);
  REQUIRE(Tool(dir, "put " + Q(db) + " 1 hello").rc == 0);
  const std::string before = ReadFile(db);
  WriteFile(dir.File("big"), std::string(57313, '\0'));
  Result p = Tool(dir, "put " + Q(db) + " 2", dir.File("big"));
  CHECK(p.rc == 2);
  CHECK(p.err ==
        "recmap: value of 57313 bytes exceeds the largest record a region of "
        "65536 bytes holds (57312 bytes)\n");
  // Not even the owner word of region 0 (recovery's scrub-pending mark).
  CHECK(ReadFile(db) == before);
}

// 200 records "value-<i>" into 16 KiB regions; returns the region-relative
// committed tail of the last region.
uint64_t Fill200(const std::string& path) {
  Options o;
  o.create_if_missing = true;
  o.region_size = 16384;
  auto s = Store::Open(path, o);
  REQUIRE(s.ok());
  for (int i = 1; i <= 200; ++i) {
    REQUIRE((*s)->Put(i, "value-" + std::to_string(i)).ok());
  }
  StoreStats st = (*s)->Stats();
  REQUIRE(st.regions >= 2);
  return st.region_stats.back().committed_tail;
}

TEST_CASE("cli: read-only commands read a last region cut short",
          "[cli][issue11]") {
  TempDir dir;
  const std::string db = dir.File("t.rmap");
  const uint64_t tail = Fill200(db);
  const std::string all = ReadFile(db);
  REQUIRE(all.size() % 16384 == 8192);
  REQUIRE(16384 - 5000 > tail);  // the cut takes only unused space
  const std::string cut = dir.File("cut.rmap");
  WriteFile(cut, all.substr(0, all.size() - 5000));

  Result g = Tool(dir, "get " + Q(cut) + " 200");
  CHECK(g.rc == 0);
  CHECK(g.out == "value-200");
  Result d = Tool(dir, "dump " + Q(cut) + " --preview 0");
  CHECK(d.rc == 0);
  CHECK(d.err.empty());
  // A header line and 200 records.
  CHECK(std::count(d.out.begin(), d.out.end(), '\n') == 201);
  Result s = Tool(dir, "stats " + Q(cut));
  CHECK(s.rc == 0);
  CHECK_THAT(s.out, Catch::Contains("records       200 (200 live"));
  CHECK(Tool(dir, "inspect " + Q(cut)).rc == 0);
  // Read-only: the file is not changed.
  CHECK(ReadFile(cut) == all.substr(0, all.size() - 5000));

  Options ro;
  ro.read_only = true;
  auto st = Store::Open(cut, ro);
  REQUIRE(st.ok());
  auto v = (*st)->Get(200);
  REQUIRE(v.ok());
  CHECK(*v == "value-200");
  CHECK((*st)->Stats().unreadable_bytes == 0);
}

TEST_CASE("cli: read-only commands say which published records a cut hides",
          "[cli][issue11]") {
  TempDir dir;
  const std::string db = dir.File("t.rmap");
  const uint64_t tail = Fill200(db);
  const std::string all = ReadFile(db);
  // Cut 100 bytes below the last region's committed tail.
  const uint64_t region = all.size() - 16384;
  const uint64_t size = region + tail - 100;
  const std::string cut = dir.File("cut.rmap");
  WriteFile(cut, all.substr(0, size));
  // The public API first: how many published bytes are unreadable (the
  // last intact record may end inside the cut part's zero padding).
  Options ro;
  ro.read_only = true;
  auto st = Store::Open(cut, ro);
  REQUIRE(st.ok());
  StoreStats stats = (*st)->Stats();
  CHECK(stats.unreadable_bytes > 0);
  CHECK(stats.unreadable_bytes <= 100 + 48);
  REQUIRE(stats.unreadable.size() == 1);
  const std::string msg =
      "recmap: " + cut + ": region " + std::to_string((region - 8192) / 16384) +
      ": the file is cut short at offset " + std::to_string(size) +
      ", below the committed tail at file offset " +
      std::to_string(region + tail) + ": " +
      std::to_string(stats.unreadable_bytes) +
      " bytes of published records cannot be read\n";
  CHECK("recmap: " + stats.unreadable[0] + "\n" == msg);
  CHECK(!(*st)->Get(200).ok());

  Result g = Tool(dir, "get " + Q(cut) + " 200");
  CHECK(g.rc == 3);
  CHECK(g.err == "recmap: " + cut + ": id 200 not found\n" + msg);
  CHECK(Tool(dir, "get " + Q(cut) + " 1").out == "value-1");
  for (const char* cmd : {"dump", "stats", "inspect"}) {
    Result r = Tool(dir, std::string(cmd) + " " + Q(cut));
    CHECK(r.rc == 3);
    CHECK(r.err == msg);
  }
  CHECK(Tool(dir, "dump " + Q(cut) + " --region 0").rc == 0);
}

TEST_CASE("cli: exit codes of issue 11 agree with docs/CLI.md",
          "[cli][issue11]") {
  TempDir dir;
  const std::string nope = dir.File("nope.rmap");
  const std::string no_file =
      "recmap: " + nope + ": no such store file (create_if_missing is off)\n";
  Result r = Tool(dir, "verify " + Q(nope));
  CHECK(r.rc == 4);
  CHECK(r.err == no_file);
  r = Tool(dir, "recover " + Q(nope));
  CHECK(r.rc == 4);
  CHECK(r.err == no_file);

  // A newer format version: exit 3 from compact as from get (6 is busy).
  const std::string v2 = dir.File("v2.rmap");
  REQUIRE(Tool(dir, "create " + Q(v2)).rc == 0);
  CHECK(ReadFile(v2).size() == 8192);  // header pages, no region yet
  std::string bytes = ReadFile(v2);
  bytes[8] = 2;
  WriteFile(v2, bytes);
  const std::string newer = "recmap: " + v2 +
                            ": format version 2 is newer than this build "
                            "supports (1)\n";
  r = Tool(dir, "get " + Q(v2) + " 1");
  CHECK(r.rc == 3);
  CHECK(r.err == newer);
  r = Tool(dir, "compact " + Q(v2) + " -q");
  CHECK(r.rc == 3);
  CHECK(r.err == newer);

  r = Tool(dir, "frob x");
  CHECK(r.rc == 2);
  CHECK(r.err ==
        "recmap: unknown subcommand 'frob' (the subcommands: create, put, "
        "get, del, dump, inspect, stats, tail, ship, restore, follow, compact, "
        "verify, recover)\n"
        "Run with --help for more information.\n");

  const std::string db = dir.File("s.rmap");
  REQUIRE(Tool(dir, "create " + Q(db)).rc == 0);
  r = Tool(dir, "dump " + Q(db) + " --limit -1");
  CHECK(r.rc == 2);
  CHECK_THAT(r.err, Catch::StartsWith("--limit: '-1' is not an unsigned "
                                      "64-bit decimal count"));

  const std::string loop = dir.File("loop.rmap");
  REQUIRE(::symlink(loop.c_str(), loop.c_str()) == 0);
  r = Tool(dir, "get " + Q(loop) + " 1");
  CHECK(r.rc == 4);
  CHECK(r.err ==
        "recmap: open " + loop + ": Too many levels of symbolic links\n");
  const std::string longname = dir.File(std::string(300, 'a') + ".rmap");
  r = Tool(dir, "get " + Q(longname) + " 1");
  CHECK(r.rc == 4);
  CHECK(r.err == "recmap: open " + longname + ": File name too long\n");
}

}  // namespace
}  // namespace recmap
