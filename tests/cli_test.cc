// The recmap tool end to end: the built binary run through a shell, with its
// exact output and exit codes checked.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <random>
#include <string>

#include "test_util.h"

namespace recmap {
namespace {

using testing::ForkChild;
using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;
using testing::ToolPath;
using testing::WaitChild;
using testing::WriteFile;

struct Result {
  int rc = -1;
  std::string out;
  std::string err;
};

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

// Runs `recmap <args>` in a shell (args are shell words, already quoted),
// stdin from `stdin_path` (or /dev/null), stdout and stderr captured apart.
Result Tool(const TempDir& dir, const std::string& args,
            const std::string& stdin_path = "/dev/null") {
  Result r;
  const std::string err_path = dir.File("stderr.txt");
  r.rc = RunCommand(Quote(ToolPath()) + " " + args + " <" + Quote(stdin_path) +
                        " 2>" + Quote(err_path),
                    &r.out);
  r.err = ReadFile(err_path);
  INFO("recmap " << args << "\nrc=" << r.rc << "\nstderr: " << r.err);
  return r;
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    // One byte in four is NUL, so binary safety is really exercised.
    s[i] = (rng() % 4 == 0) ? '\0' : static_cast<char>(rng());
  }
  return s;
}

// A store with 64 KiB regions holding: put 1 "hello" (argument), put 2
// "a\0b\xff" (stdin), put 3 "filedata\n" (--file), del 1.
std::string SampleStore(const TempDir& dir) {
  const std::string db = dir.File("s.rmap");
  Result c = Tool(dir, "create " + Quote(db) + " --region-size 65536");
  REQUIRE(c.rc == 0);
  CHECK(c.out == "created " + db + " (region size 64.0 KiB)\n");
  REQUIRE(Tool(dir, "put " + Quote(db) + " 1 hello").rc == 0);
  WriteFile(dir.File("in.bin"), std::string("a\0b\xff", 4));
  REQUIRE(Tool(dir, "put " + Quote(db) + " 2", dir.File("in.bin")).rc == 0);
  WriteFile(dir.File("value.txt"), "filedata\n");
  REQUIRE(Tool(dir,
               "put " + Quote(db) + " 3 --file " + Quote(dir.File("value.txt")))
              .rc == 0);
  REQUIRE(Tool(dir, "del " + Quote(db) + " 1").rc == 0);
  return db;
}

TEST_CASE("cli: put from argument, stdin and file; get byte for byte",
          "[cli]") {
  TempDir dir;
  const std::string db = SampleStore(dir);

  Result g = Tool(dir, "get " + Quote(db) + " 2");
  CHECK(g.rc == 0);
  CHECK(g.out == std::string("a\0b\xff", 4));
  CHECK(g.err.empty());
  g = Tool(dir, "get " + Quote(db) + " 3");
  CHECK(g.rc == 0);
  CHECK(g.out == "filedata\n");

  // Put writes nothing to stdout; a later put of the same id wins.
  Result p = Tool(dir, "put " + Quote(db) + " 3 second");
  CHECK(p.rc == 0);
  CHECK(p.out.empty());
  CHECK(Tool(dir, "get " + Quote(db) + " 3").out == "second");

  // A zero-length value, and a value that starts with a dash after "--".
  CHECK(Tool(dir, "put " + Quote(db) + " 7 ''").rc == 0);
  g = Tool(dir, "get " + Quote(db) + " 7");
  CHECK(g.rc == 0);
  CHECK(g.out.empty());
  CHECK(Tool(dir, "put " + Quote(db) + " 8 -- -dash").rc == 0);
  CHECK(Tool(dir, "get " + Quote(db) + " 8").out == "-dash");

  // The largest u64 id.
  CHECK(Tool(dir, "put " + Quote(db) + " 18446744073709551615 max").rc == 0);
  CHECK(Tool(dir, "get " + Quote(db) + " 18446744073709551615").out == "max");
}

TEST_CASE("cli: large binary values survive stdin and --file", "[cli]") {
  TempDir dir;
  const std::string db = dir.File("big.rmap");
  REQUIRE(Tool(dir, "create " + Quote(db) + " --region-size 65536").rc == 0);
  // The largest payload a 64 KiB region holds: 65536 - 8192 - 32.
  const std::string big = RandomBytes(57312, 1);
  const std::string mid = RandomBytes(40000, 2);
  WriteFile(dir.File("big.bin"), big);
  WriteFile(dir.File("mid.bin"), mid);
  REQUIRE(
      Tool(dir, "put " + Quote(db) + " 10 --file " + Quote(dir.File("big.bin")))
          .rc == 0);
  REQUIRE(Tool(dir, "put " + Quote(db) + " 11", dir.File("mid.bin")).rc == 0);
  Result g = Tool(dir, "get " + Quote(db) + " 10");
  CHECK(g.rc == 0);
  CHECK(g.out.size() == big.size());
  CHECK(g.out == big);
  g = Tool(dir, "get " + Quote(db) + " 11");
  CHECK(g.rc == 0);
  CHECK(g.out == mid);

  // One byte more than a region holds: InvalidArgument, a usage error.
  WriteFile(dir.File("huge.bin"), RandomBytes(57313, 3));
  Result p = Tool(dir, "put " + Quote(db) + " 12", dir.File("huge.bin"));
  CHECK(p.rc == 2);
  CHECK_THAT(p.err, Catch::StartsWith("recmap: value of 57313 bytes exceeds "
                                      "the largest record a region of 65536 "
                                      "bytes holds (57312 bytes)"));
  CHECK(Tool(dir, "get " + Quote(db) + " 12").rc == 1);
}

TEST_CASE("cli: del, then get exits 1", "[cli]") {
  TempDir dir;
  const std::string db = SampleStore(dir);
  Result g = Tool(dir, "get " + Quote(db) + " 1");
  CHECK(g.rc == 1);
  CHECK(g.out.empty());
  CHECK(g.err == "recmap: " + db + ": id 1 was deleted\n");
  g = Tool(dir, "get " + Quote(db) + " 99");
  CHECK(g.rc == 1);
  CHECK(g.err == "recmap: " + db + ": id 99 not found\n");
  // Deleting an absent id is not an error.
  CHECK(Tool(dir, "del " + Quote(db) + " 99").rc == 0);
  // A deleted id can be written again.
  CHECK(Tool(dir, "put " + Quote(db) + " 1 again").rc == 0);
  CHECK(Tool(dir, "get " + Quote(db) + " 1").out == "again");
}

TEST_CASE("cli: dump prints one line per record in log order", "[cli]") {
  TempDir dir;
  const std::string db = SampleStore(dir);
  // Region 0 starts at 8192; its records at 8192 + 2 pages. Each record is
  // a 32-byte header plus its payload padded to 8.
  const std::string header =
      "REGION       OFFSET   SEQUENCE         ID TYPE      LENGTH  PREVIEW\n";
  const std::string rows =
      "     0        16384          1          1 put            5  hello\n"
      "     0        16424          2          2 put            4  "
      "a\\x00b\\xff\n"
      "     0        16464          3          3 put            9  "
      "filedata\\x0a\n"
      "     0        16512          4          1 delete         0\n";
  Result d = Tool(dir, "dump " + Quote(db));
  CHECK(d.rc == 0);
  CHECK(d.out == header + rows);
  CHECK(d.err.empty());

  d = Tool(dir, "dump " + Quote(db) + " --limit 2 --preview 3");
  CHECK(d.rc == 0);
  CHECK(d.out == header +
                     "     0        16384          1          1 put            "
                     "5  hel...\n"
                     "     0        16424          2          2 put            "
                     "4  a\\x00b...\n");
  d = Tool(dir, "dump " + Quote(db) + " --region 0 --preview 0 --limit 1");
  CHECK(d.rc == 0);
  CHECK(d.out == header +
                     "     0        16384          1          1 put            "
                     "5\n");
  d = Tool(dir, "dump " + Quote(db) + " --region 1");
  CHECK(d.rc == 2);
  CHECK(d.out.empty());
  CHECK(d.err == "recmap: no region 1 (the store has 1)\n");
}

TEST_CASE("cli: dump walks regions in order, not sequences", "[cli]") {
  TempDir dir;
  const std::string db = dir.File("m.rmap");
  REQUIRE(Tool(dir, "create " + Quote(db) + " --region-size 65536").rc == 0);
  // A 64 KiB region holds 57344 bytes of records: one 30000-byte record
  // (30032 with its header) and some small ones, never two large ones.
  WriteFile(dir.File("v.bin"), std::string(30000, 'v'));
  const std::string big = " --file " + Quote(dir.File("v.bin"));
  REQUIRE(Tool(dir, "put " + Quote(db) + " 1" + big).rc == 0);  // region 0
  REQUIRE(Tool(dir, "put " + Quote(db) + " 2" + big).rc == 0);  // region 1
  REQUIRE(Tool(dir, "put " + Quote(db) + " 3 small").rc == 0);  // region 0
  REQUIRE(Tool(dir, "put " + Quote(db) + " 4" + big).rc == 0);  // region 2
  const std::string header =
      "REGION       OFFSET   SEQUENCE         ID TYPE      LENGTH  PREVIEW\n";
  Result d = Tool(dir, "dump " + Quote(db) + " --preview 4");
  CHECK(d.rc == 0);
  CHECK(d.out == header +
                     "     0        16384          1          1 put        "
                     "30000  vvvv...\n"
                     "     0        46416          3          3 put            "
                     "5  smal...\n"
                     "     1        81920          2          2 put        "
                     "30000  vvvv...\n"
                     "     2       147456          4          4 put        "
                     "30000  vvvv...\n");
  d = Tool(dir, "dump " + Quote(db) + " --preview 0 --region 1");
  CHECK(d.rc == 0);
  CHECK(d.out == header +
                     "     1        81920          2          2 put        "
                     "30000\n");
  // --limit counts records across regions.
  d = Tool(dir, "dump " + Quote(db) + " --preview 0 --limit 3");
  CHECK(d.rc == 0);
  CHECK(d.out == header +
                     "     0        16384          1          1 put        "
                     "30000\n"
                     "     0        46416          3          3 put            "
                     "5\n"
                     "     1        81920          2          2 put        "
                     "30000\n");
}

TEST_CASE("cli: put --sync moves the durable tail", "[cli]") {
  TempDir dir;
  const std::string db = dir.File("d.rmap");
  REQUIRE(Tool(dir, "create " + Quote(db) + " --region-size 65536").rc == 0);
  REQUIRE(Tool(dir, "put " + Quote(db) + " 1 hello --sync").rc == 0);
  Result r = Tool(dir, "inspect " + Quote(db));
  CHECK(r.rc == 0);
  // The region's row: committed and durable tails both past the record.
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*\n     0         8192 "
                                   "0x[0-9a-f]{16}       8232       8232 "
                                   "(.|\n)*"));
  // The next record does not touch the synced page: it starts on the next
  // page, behind a padding record naming the gap (8232 = 0x2028).
  REQUIRE(Tool(dir, "put " + Quote(db) + " 2 world").rc == 0);
  r = Tool(dir, "dump " + Quote(db));
  CHECK(r.rc == 0);
  CHECK(r.out ==
        "REGION       OFFSET   SEQUENCE         ID TYPE      LENGTH  PREVIEW\n"
        "     0        16384          1          1 put            5  hello\n"
        "     0        20480          2          0 padding        8  "
        "( \\x00\\x00\\x00\\x00\\x00\\x00\n"
        "     0        20520          2          2 put            5  world\n");
  CHECK(Tool(dir, "get " + Quote(db) + " 2").out == "world");
}

TEST_CASE("cli: inspect shows the header, the region table and totals",
          "[cli]") {
  TempDir dir;
  const std::string db = SampleStore(dir);
  Result r = Tool(dir, "inspect " + Quote(db));
  CHECK(r.rc == 0);
  CHECK(r.err.empty());
  CHECK_THAT(
      r.out,
      Catch::Matches(
          "path:            " + db +
          "\n"
          "format version:  1\n"
          "uuid:            [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
          "[0-9a-f]{12}\n"
          "region size:     65536 \\(64\\.0 KiB\\)\n"
          "created:         20[0-9]{2}-[0-9]{2}-[0-9]{2} "
          "[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} UTC\n"
          "file size:       73728 \\(72\\.0 KiB\\)\n"
          "regions:         1\n"
          "next sequence:   5\n"
          "\n"
          "REGION       OFFSET              EPOCH  COMMITTED    DURABLE   "
          "FILL  RECORDS SEALED  OWNER\n"
          // 4 records: 40 + 40 + 48 + 32 bytes after the two header
          // pages; nothing was synced, so there is no durable tail.
          "     0         8192 0x[0-9a-f]{16}       8352          -   0\\.3%"
          "        4     no  -\n"
          "\n"
          "records: 4  live: 2  tombstones: 1  payload bytes: 18  live "
          "payload bytes: 13\n"));
}

TEST_CASE("cli: inspect tells a live owner from a dead one", "[cli]") {
  TempDir dir;
  const std::string db = dir.File("o.rmap");
  REQUIRE(Tool(dir, "create " + Quote(db) + " --region-size 65536").rc == 0);
  int ready[2], hold[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(hold) == 0);
  const pid_t child = ForkChild([&]() {
    ::close(ready[0]);
    ::close(hold[1]);
    Options o;
    absl::StatusOr<std::unique_ptr<Store>> s = Store::Open(db, o);
    if (!s.ok() || !(*s)->Put(1, "held").ok()) return 1;
    char c = 'r';
    if (::write(ready[1], &c, 1) != 1) return 2;
    // Hold the region until the parent closes the pipe or kills us.
    while (::read(hold[0], &c, 1) > 0) {
    }
    return 0;
  });
  ::close(ready[1]);
  ::close(hold[0]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  const std::string row =
      "\n     0         8192 0x[0-9a-f]{16}       8232 "
      "         -   0\\.1%        1     no  " +
      std::to_string(child);
  Result r = Tool(dir, "inspect " + Quote(db));
  CHECK(r.rc == 0);
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*" + row + " alive\n(.|\n)*"));
  // The live writer's record is visible to the tool without reopening.
  CHECK(Tool(dir, "get " + Quote(db) + " 1").out == "held");

  REQUIRE(::kill(child, SIGKILL) == 0);
  CHECK(WaitChild(child) == 128 + SIGKILL);
  ::close(ready[0]);
  ::close(hold[1]);
  r = Tool(dir, "inspect " + Quote(db));
  CHECK(r.rc == 0);
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*" + row + " dead\n(.|\n)*"));
  CHECK(Tool(dir, "get " + Quote(db) + " 1").out == "held");
}

TEST_CASE("cli: read-only commands leave the file untouched", "[cli]") {
  TempDir dir;
  const std::string db = SampleStore(dir);
  const std::string before = ReadFile(db);
  REQUIRE(!before.empty());
  CHECK(Tool(dir, "get " + Quote(db) + " 2").rc == 0);
  CHECK(Tool(dir, "get " + Quote(db) + " 1").rc == 1);
  CHECK(Tool(dir, "dump " + Quote(db)).rc == 0);
  CHECK(Tool(dir, "inspect " + Quote(db)).rc == 0);
  CHECK(ReadFile(db) == before);
}

TEST_CASE("cli: usage errors exit 2", "[cli]") {
  TempDir dir;
  const std::string db = SampleStore(dir);
  const char* bad[] = {
      "",                                // no subcommand
      "frobnicate",                      // unknown subcommand
      "get",                             // missing FILE and ID
      "get " /* FILE only */,            //
      "put FILE notanumber x",           // ID not a number
      "put FILE -3 x",                   // negative ID
      "get FILE 18446744073709551616",   // 2^64
      "del FILE 0x10",                   // not decimal
      "put FILE 1 x --file FILE",        // VALUE and --file
      "dump FILE --limit lots",          // bad number
      "inspect FILE --bogus",            // unknown option
      "create FILE --region-size 5000",  // not a page multiple
      "create FILE",                     // exists
  };
  for (std::string args : bad) {
    for (size_t p; (p = args.find("FILE")) != std::string::npos;)
      args.replace(p, 4, Quote(db));
    if (args == "get ") args += Quote(db);
    Result r = Tool(dir, args);
    INFO("args: " << args << "\nstderr: " << r.err);
    CHECK(r.rc == 2);
    CHECK(!r.err.empty());
  }
  CHECK(
      Tool(dir, "create " + Quote(dir.File("new.rmap")) + " --region-size 5000")
          .err ==
      "recmap: region_size 5000 must be a multiple of 4096 "
      "between 16 KiB and 4 GiB\n");
}

TEST_CASE("cli: a missing file exits 4, a damaged one 3", "[cli]") {
  TempDir dir;
  const std::string missing = dir.File("missing.rmap");
  for (const char* cmd : {"get", "put", "del", "dump", "inspect"}) {
    std::string args = std::string(cmd) + " " + Quote(missing);
    if (std::string(cmd) != "dump" && std::string(cmd) != "inspect")
      args += " 1";
    if (std::string(cmd) == "put") args += " x";
    Result r = Tool(dir, args);
    CHECK(r.rc == 4);
    CHECK(r.err == "recmap: " + missing +
                       ": no such store file (create_if_missing is off)\n");
  }
  // put does not create the store either.
  CHECK(ReadFile(missing).empty());

  // A value file that does not exist is an I/O error too, not "not found".
  const std::string db = SampleStore(dir);
  Result r = Tool(
      dir, "put " + Quote(db) + " 5 --file " + Quote(dir.File("nope.bin")));
  CHECK(r.rc == 4);
  CHECK(r.err ==
        "recmap: " + dir.File("nope.bin") + ": No such file or directory\n");

  // Wrong magic: a page of bytes that are not a recmap header.
  const std::string bad = dir.File("bad.rmap");
  WriteFile(bad, std::string(8192, 'Z'));
  for (const char* cmd : {"inspect", "dump", "get"}) {
    std::string args = std::string(cmd) + " " + Quote(bad);
    if (std::string(cmd) == "get") args += " 1";
    r = Tool(dir, args);
    CHECK(r.rc == 3);
    CHECK(r.out.empty());
    CHECK(r.err ==
          "recmap: " + bad + ": not a recmap store: wrong magic at offset 0\n");
  }
  // A writing command must not "repair" it either.
  CHECK(Tool(dir, "put " + Quote(bad) + " 1 x").rc == 3);
  CHECK(ReadFile(bad) == std::string(8192, 'Z'));

  // An empty file.
  const std::string empty = dir.File("empty.rmap");
  WriteFile(empty, "");
  r = Tool(dir, "inspect " + Quote(empty));
  CHECK(r.rc == 3);
  CHECK(r.err == "recmap: " + empty + ": empty file, not a recmap store\n");
}

TEST_CASE("cli: --help lists the exit codes and each command an example",
          "[cli]") {
  TempDir dir;
  Result r = Tool(dir, "--help");
  CHECK(r.rc == 0);
  CHECK_THAT(r.out, Catch::Contains("Exit codes: 0 ok, 1 not found, 2 usage "
                                    "error, 3 damaged store,"));
  CHECK_THAT(r.out, Catch::Contains("4 I/O error"));
  for (const char* cmd : {"create", "put", "get", "del", "dump", "inspect"}) {
    CHECK_THAT(r.out, Catch::Contains(std::string("  ") + cmd + " "));
    Result h = Tool(dir, std::string(cmd) + " --help");
    INFO(cmd);
    CHECK(h.rc == 0);
    CHECK_THAT(h.out, Catch::Contains("Example"));
    CHECK_THAT(h.out, Catch::Contains(std::string("  recmap ") + cmd + " "));
  }
}

}  // namespace
}  // namespace recmap
