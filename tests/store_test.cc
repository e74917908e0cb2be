// The Store API in one process: put/get/overwrite/delete/reopen, sizes,
// read-only handles, iteration, stats and threads.
#include "recmap/store.h"

#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "format.h"
#include "test_util.h"

namespace recmap {
namespace {

using testing::OpenOrDie;
using testing::Payload;
using testing::SmallOptions;
using testing::TempDir;

TEST_CASE("put, get, overwrite, delete, reopen", "[store]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  {
    auto s = OpenOrDie(path, SmallOptions());
    REQUIRE(s->Put(1, "one").ok());
    REQUIRE(s->Put(2, "two").ok());
    REQUIRE(s->Put(1, "uno").ok());
    REQUIRE(s->Delete(2).ok());
    REQUIRE(s->Delete(99).ok());  // deleting an absent id is fine
    CHECK(*s->Get(1) == "uno");
    CHECK(s->Get(2).status().code() == absl::StatusCode::kNotFound);
    CHECK(s->Get(3).status().code() == absl::StatusCode::kNotFound);
    CHECK_THAT(std::string(s->Get(3).status().message()),
               Catch::Contains("id 3 not found"));
    CHECK_THAT(std::string(s->Get(2).status().message()),
               Catch::Contains("deleted"));
  }
  auto s = OpenOrDie(path, SmallOptions());
  CHECK(*s->Get(1) == "uno");
  CHECK(s->Get(2).status().code() == absl::StatusCode::kNotFound);
  absl::StatusOr<RecordView> r = s->GetRecord(1);
  REQUIRE(r.ok());
  CHECK(r->id == 1);
  CHECK(r->sequence == 3);
  CHECK(r->type == RecordType::kPut);
  StoreStats st = s->Stats();
  CHECK(st.records == 5);
  CHECK(st.live_records == 1);
  CHECK(st.tombstones == 2);
  CHECK(st.next_sequence == 6);
  // A write after reopen continues the sequence.
  REQUIRE(s->Put(2, "dos").ok());
  CHECK(s->GetRecord(2)->sequence == 6);
}

TEST_CASE("Close keeps views valid until the Store is destroyed", "[store]") {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.rmap"), SmallOptions());
  REQUIRE(s->Put(1, "still mapped").ok());
  absl::StatusOr<std::string_view> v = s->Get(1);
  REQUIRE(v.ok());
  const uint64_t ids[] = {1};
  std::vector<absl::StatusOr<std::string_view>> many = s->MultiGet(ids);
  REQUIRE(s->Close().ok());
  CHECK(s->Close().ok());
  CHECK(*v == "still mapped");
  REQUIRE(many.size() == 1);
  CHECK(*many[0] == "still mapped");
}

TEST_CASE("MultiGet answers each id exactly as Get does", "[store]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  auto s = OpenOrDie(path, SmallOptions());
  // Enough ids for several batches, across regions of the small store.
  for (uint64_t id = 1; id <= 3000; ++id) {
    REQUIRE(s->Put(id, Payload(id, 40)).ok());
  }
  for (uint64_t id = 1; id <= 3000; id += 7) REQUIRE(s->Delete(id).ok());
  for (uint64_t id = 2; id <= 3000; id += 5) {
    REQUIRE(s->Put(id, "new" + std::to_string(id)).ok());
  }
  std::vector<uint64_t> ids;
  for (uint64_t id = 0; id <= 3100; ++id) ids.push_back((id * 7919) % 3101);
  ids.push_back(5);  // duplicates are fine
  ids.push_back(5);
  std::vector<absl::StatusOr<std::string_view>> got = s->MultiGet(ids);
  REQUIRE(got.size() == ids.size());
  size_t found = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    absl::StatusOr<std::string_view> want = s->Get(ids[i]);
    REQUIRE(got[i].status().code() == want.status().code());
    CHECK(std::string(got[i].status().message()) ==
          std::string(want.status().message()));
    if (want.ok()) {
      CHECK(*got[i] == *want);
      ++found;
    }
  }
  // 3000 ids, 429 deleted (1, 8, ...), of which 86 rewritten (id % 35 == 22).
  CHECK(found == 3000 - 429 + 86 + 2);
  // Another writer's records are seen by the next call, as by Get.
  auto w = s->NewWriter();
  REQUIRE(w.ok());
  REQUIRE((*w)->Put(5000, "late").ok());
  const uint64_t late[] = {5000};
  got = s->MultiGet(late);
  REQUIRE(got.size() == 1);
  REQUIRE(got[0].ok());
  CHECK(*got[0] == "late");
  got = s->MultiGet({});
  CHECK(got.empty());
}

TEST_CASE("values are byte-exact, including NULs and every byte value",
          "[store]") {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.rmap"), SmallOptions());
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  all += std::string(5, '\0');
  REQUIRE(s->Put(7, all).ok());
  for (uint64_t i = 0; i < 300; ++i)
    REQUIRE(s->Put(100 + i, Payload(0, i)).ok());
  CHECK(*s->Get(7) == all);
  for (uint64_t i = 0; i < 300; ++i) CHECK(*s->Get(100 + i) == Payload(0, i));
}

TEST_CASE("Append assigns increasing ids", "[store]") {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.rmap"), SmallOptions());
  std::vector<uint64_t> ids;
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<uint64_t> id = s->Append("v" + std::to_string(i));
    REQUIRE(id.ok());
    ids.push_back(*id);
  }
  for (size_t i = 1; i < ids.size(); ++i) CHECK(ids[i] > ids[i - 1]);
  for (size_t i = 0; i < ids.size(); ++i) {
    CHECK(*s->Get(ids[i]) == "v" + std::to_string(i));
  }
}

TEST_CASE("record size limits", "[store]") {
  TempDir dir;
  Options o = SmallOptions();
  auto s = OpenOrDie(dir.File("s.rmap"), o);
  const uint64_t max = MaxPayload(o.region_size);
  REQUIRE(max == 65536 - 8192 - 32);
  SECTION("zero-length records") {
    REQUIRE(s->Put(1, "").ok());
    absl::StatusOr<std::string_view> v = s->Get(1);
    REQUIRE(v.ok());
    CHECK(v->empty());
    absl::StatusOr<uint64_t> id = s->Append("");
    REQUIRE(id.ok());
    CHECK(s->Get(*id)->empty());
  }
  SECTION("the largest record a region holds, twice, then one byte more") {
    const std::string big(max, 'x');
    REQUIRE(s->Put(1, big).ok());
    REQUIRE(s->Put(2, big).ok());
    CHECK(*s->Get(1) == big);
    CHECK(*s->Get(2) == big);
    CHECK(s->Stats().regions == 2);
    absl::Status too_big = s->Put(3, std::string(max + 1, 'y'));
    CHECK(too_big.code() == absl::StatusCode::kInvalidArgument);
    CHECK_THAT(std::string(too_big.message()),
               Catch::Contains(std::to_string(max + 1) + " bytes exceeds"));
    CHECK(s->Get(3).status().code() == absl::StatusCode::kNotFound);
  }
  s.reset();
  auto r = OpenOrDie(dir.File("s.rmap"), o);
  CHECK(r->Stats().records >= 2);
}

TEST_CASE("a read-only handle reads but refuses writes", "[store]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  {
    auto s = OpenOrDie(path, SmallOptions());
    REQUIRE(s->Put(5, "five").ok());
  }
  Options ro;
  ro.read_only = true;
  auto s = OpenOrDie(path, ro);
  CHECK(*s->Get(5) == "five");
  CHECK(s->Put(6, "x").code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s->Delete(5).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s->Append("x").status().code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(s->Sync().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s->NewWriter().status().code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(s->info().read_only);
}

TEST_CASE("ForEachLive yields the latest live version in sequence order",
          "[store]") {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.rmap"), SmallOptions());
  std::map<uint64_t, std::string> model;
  for (uint64_t i = 0; i < 2000; ++i) {
    uint64_t id = (i * 37) % 500;
    if (i % 11 == 0) {
      REQUIRE(s->Delete(id).ok());
      model.erase(id);
    } else {
      REQUIRE(s->Put(id, Payload(1, i)).ok());
      model[id] = Payload(1, i);
    }
  }
  std::map<uint64_t, std::string> seen;
  uint64_t last_seq = 0;
  REQUIRE(s->ForEachLive([&](const RecordView& v) {
             CHECK(v.sequence > last_seq);
             last_seq = v.sequence;
             CHECK(v.type == RecordType::kPut);
             seen[v.id] = std::string(v.value);
             return true;
           }).ok());
  CHECK(seen == model);
  StoreStats st = s->Stats();
  CHECK(st.records == 2000);
  CHECK(st.live_records == model.size());
  // Early stop.
  int n = 0;
  REQUIRE(s->ForEachLive([&](const RecordView&) { return ++n < 3; }).ok());
  CHECK(n == 3);
}

TEST_CASE("ForEachInRegion walks the log including superseded records",
          "[store]") {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.rmap"), SmallOptions());
  REQUIRE(s->Put(1, "a").ok());
  REQUIRE(s->Put(1, "b").ok());
  REQUIRE(s->Delete(1).ok());
  std::vector<std::pair<RecordType, std::string>> log;
  REQUIRE(s->ForEachInRegion(0, [&](const RecordView& v) {
             log.emplace_back(v.type, std::string(v.value));
             return true;
           }).ok());
  REQUIRE(log.size() == 3);
  CHECK(log[0] == std::make_pair(RecordType::kPut, std::string("a")));
  CHECK(log[1] == std::make_pair(RecordType::kPut, std::string("b")));
  CHECK(log[2].first == RecordType::kDelete);
  CHECK(s->ForEachInRegion(5, [](const RecordView&) { return true; }).code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("views stay valid while the file grows", "[store]") {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.rmap"), SmallOptions());
  REQUIRE(s->Put(1, "first").ok());
  std::string_view v = *s->Get(1);
  const char* where = v.data();
  for (uint64_t i = 0; i < 5000; ++i)
    REQUIRE(s->Put(10 + i, Payload(2, i)).ok());
  CHECK(s->Stats().regions > 5);
  CHECK(v == "first");
  CHECK(s->Get(1)->data() == where);
}

TEST_CASE("8 threads x 10,000 puts through the shared handle",
          "[store][threads]") {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.rmap"), SmallOptions());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (uint64_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 10000; ++i) {
        if (!s->Put(t * 1000000 + i, Payload(t, i, 64)).ok()) failures++;
        if (i % 1000 == 0 && !s->Get(t * 1000000 + i).ok()) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  StoreStats st = s->Stats();
  CHECK(st.records == 80000);
  CHECK(st.live_records == 80000);
  for (uint64_t t = 0; t < 8; ++t) {
    for (uint64_t i = 0; i < 10000; i += 97) {
      CHECK(*s->Get(t * 1000000 + i) == Payload(t, i, 64));
    }
  }
}

TEST_CASE("8 threads with their own Writers write to distinct regions",
          "[store][threads]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  auto s = OpenOrDie(path, SmallOptions());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::vector<std::set<int64_t>> regions(8);
  // Writers live until every thread is done, so any region two of them
  // touched would have been held by both at once.
  std::vector<std::unique_ptr<Writer>> writers;
  for (int t = 0; t < 8; ++t) {
    absl::StatusOr<std::unique_ptr<Writer>> w = s->NewWriter();
    REQUIRE(w.ok());
    writers.push_back(std::move(*w));
  }
  for (uint64_t t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      Writer& w = *writers[t];
      for (uint64_t i = 0; i < 10000; ++i) {
        if (!w.Put(t * 1000000 + i, Payload(t, i, 64)).ok()) failures++;
        regions[t].insert(w.region());
        // Reads by the writing thread see its own writes at once.
        if (i % 2500 == 0 && *s->Get(t * 1000000 + i) != Payload(t, i, 64))
          failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  // No region was ever used by two writers.
  std::set<int64_t> all;
  size_t total = 0;
  for (const auto& r : regions) {
    total += r.size();
    all.insert(r.begin(), r.end());
  }
  CHECK(all.size() == total);
  writers.clear();
  s.reset();
  auto r = OpenOrDie(path, SmallOptions());
  StoreStats st = r->Stats();
  CHECK(st.records == 80000);
  CHECK(st.live_records == 80000);
  for (uint64_t t = 0; t < 8; ++t) {
    for (uint64_t i = 0; i < 10000; i += 101) {
      CHECK(*r->Get(t * 1000000 + i) == Payload(t, i, 64));
    }
  }
}

TEST_CASE("latest write wins across writers by sequence", "[store]") {
  TempDir dir;
  const std::string path = dir.File("s.rmap");
  auto s = OpenOrDie(path, SmallOptions());
  auto w1 = s->NewWriter();
  auto w2 = s->NewWriter();
  REQUIRE(w1.ok());
  REQUIRE(w2.ok());
  REQUIRE((*w1)->Put(1, "from w1").ok());
  REQUIRE((*w2)->Put(1, "from w2").ok());
  REQUIRE((*w1)->Put(2, "w1 again").ok());
  REQUIRE((*w2)->Delete(2).ok());
  CHECK((*w1)->region() != (*w2)->region());
  CHECK(*s->Get(1) == "from w2");
  CHECK(s->Get(2).status().code() == absl::StatusCode::kNotFound);
  w1->reset();
  w2->reset();
  s.reset();
  auto r = OpenOrDie(path, SmallOptions());
  CHECK(*r->Get(1) == "from w2");
  CHECK(r->Get(2).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("Sync succeeds and records the durable tail", "[store]") {
  TempDir dir;
  auto s = OpenOrDie(dir.File("s.rmap"), SmallOptions());
  REQUIRE(s->Put(1, "x").ok());
  REQUIRE(s->Sync().ok());
  StoreStats st = s->Stats();
  REQUIRE(st.region_stats.size() == 1);
  CHECK(st.region_stats[0].durable_tail_valid);
  CHECK(st.region_stats[0].durable_tail == st.region_stats[0].committed_tail);
  CHECK(st.region_stats[0].owner_alive);
}

TEST_CASE("invalid options are rejected", "[store]") {
  TempDir dir;
  Options o = SmallOptions();
  o.region_size = 5000;
  auto s = Store::Open(dir.File("a.rmap"), o);
  CHECK(s.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK_THAT(std::string(s.status().message()), Catch::Contains("region_size"));
  o = SmallOptions();
  o.read_only = true;
  CHECK(Store::Open(dir.File("a.rmap"), o).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace recmap

namespace recmap {
namespace {

TEST_CASE("a region filled by a writer that then exits is sealed", "[store]") {
  testing::TempDir dir;
  const std::string path = dir.File("s.rmap");
  Options o = testing::SmallOptions();
  const std::string big(MaxPayload(o.region_size), 'x');
  {
    auto s = testing::OpenOrDie(path, o);
    REQUIRE(s->Put(1, big).ok());  // exactly fills region 0
  }
  auto s = testing::OpenOrDie(path, o);
  StoreStats st = s->Stats();
  REQUIRE(st.region_stats.size() == 1);
  CHECK(st.region_stats[0].sealed);
  CHECK(st.records == 1);
}

}  // namespace
}  // namespace recmap
