// Replication against a real 3-node JetStream cluster (ship/testing/
// nats_cluster.h): shipping under SIGKILL of the shipper and of a NATS
// node, a publish failing mid-window (the stream leader SIGSTOPped), restore
// and follow byte for byte, a follower's lag under steady load, a source
// with holes in its sequence space, and the error cases. No timing
// assertions: every wait has a generous deadline and only bounds a hang.
#include <nats/nats.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "nats_cluster.h"
#include "recmap/compaction.h"
#include "recmap/shipper.h"
#include "recmap/tailer.h"
#include "store_peer.h"
#include "store_rep.h"
#include "test_util.h"

namespace recmap::testing {
namespace {

using Rec = std::tuple<uint64_t, uint64_t, RecordType, std::string>;

// Starts the cluster or fails the test.
std::unique_ptr<NatsCluster> StartCluster(const std::string& stream) {
  absl::StatusOr<std::unique_ptr<NatsCluster>> c = NatsCluster::Start(stream);
  INFO(c.status().ToString());
  REQUIRE(c.ok());
  return std::move(*c);
}

std::vector<Rec> ReadAll(const std::string& path) {
  Options o;
  o.read_only = true;
  std::unique_ptr<Store> s = OpenOrDie(path, o);
  std::vector<Rec> out;
  REQUIRE(s->ForEachRecord([&](const RecordView& v) {
             out.emplace_back(v.id, v.sequence, v.type, std::string(v.value));
             return true;
           }).ok());
  return out;
}

// Appends n records: puts of ids in [0, 5000) (so later ones supersede
// earlier ones) and, one in 16, a delete.
void Write(Store& s, int n, std::mt19937_64& rng) {
  for (int i = 0; i < n; ++i) {
    uint64_t id = rng() % 5000;
    if (rng() % 16 == 0) {
      REQUIRE(s.Delete(id).ok());
    } else {
      REQUIRE(s.Put(id, Payload(id, rng() % 1000, 120)).ok());
    }
  }
}

std::string Log(const TempDir& t, const std::string& name) {
  return t.File(name + ".log");
}

std::string Slurp(const std::string& path) { return ReadFile(path); }

void RestoreAndCompare(const NatsCluster& c, const std::string& src,
                       const std::string& out, RestoreStats* st) {
  RestoreOptions ro;
  ro.nats.url = c.urls();
  ro.nats.stream = c.stream();
  ro.nats.timeout = std::chrono::seconds(20);
  Options so;
  so.prefault_bytes = 0;
  absl::Status s = Restore(
      ro, out, so, [] { return true; }, st);
  INFO(s.ToString());
  REQUIRE(s.ok());
  std::vector<Rec> a = ReadAll(src);
  std::vector<Rec> b = ReadAll(out);
  REQUIRE(a.size() == b.size());
  size_t mismatches = 0;
  for (size_t i = 0; i < a.size(); ++i) mismatches += a[i] != b[i] ? 1 : 0;
  CHECK(mismatches == 0);
}

TEST_CASE("ship under random SIGKILL of the shipper: each record exactly once",
          "[replication]") {
  std::unique_ptr<NatsCluster> cp = StartCluster("KILLS");
  NatsCluster& c = *cp;
  TempDir t;
  const std::string src = t.File("src.rmap");
  Options o = SmallOptions();
  o.create_if_missing = true;
  std::unique_ptr<Store> store = OpenOrDie(src, o);
  std::mt19937_64 rng(std::random_device{}());
  const int kCycles = 50;
  const int kRecords = 100000;
  int killed = 0;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    Write(*store, kRecords / kCycles, rng);
    pid_t p = Spawn({ToolPath(), "ship", src, "--nats", c.urls(), "--stream",
                     c.stream(), "--timeout", "20"},
                    Log(t, "ship"));
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 200));
    ::kill(p, SIGKILL);
    if (WaitFor(p, 60) == 128 + SIGKILL) ++killed;
  }
  pid_t p = Spawn({ToolPath(), "ship", src, "--nats", c.urls(), "--stream",
                   c.stream(), "--once", "--timeout", "20"},
                  Log(t, "ship"));
  int rc = WaitFor(p, 120);
  INFO(Slurp(Log(t, "ship")));
  REQUIRE(rc == 0);
  RestoreStats st;
  RestoreAndCompare(c, src, t.File("restored.rmap"), &st);
  std::printf(
      "ship kill test: %d kill cycles, %d records shipped, %llu "
      "batches, duplicates %llu, gaps %llu\n",
      killed, kRecords, static_cast<unsigned long long>(st.batches),
      static_cast<unsigned long long>(st.duplicates),
      static_cast<unsigned long long>(st.gaps));
  CHECK(killed >= 1);
  CHECK(st.records == static_cast<uint64_t>(kRecords));
  CHECK(st.duplicates == 0);
  CHECK(st.gaps == 0);
}

TEST_CASE("ship goes on when a NATS node is SIGKILLed mid-ship",
          "[replication]") {
  std::unique_ptr<NatsCluster> cp = StartCluster("NODEKILL");
  NatsCluster& c = *cp;
  TempDir t;
  const std::string src = t.File("src.rmap");
  Options o = SmallOptions();
  o.create_if_missing = true;
  std::unique_ptr<Store> store = OpenOrDie(src, o);
  std::mt19937_64 rng(7);
  Write(*store, 20000, rng);
  pid_t p = Spawn({ToolPath(), "ship", src, "--nats", c.urls(), "--stream",
                   c.stream(), "--timeout", "10", "--give-up", "90"},
                  Log(t, "ship"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  c.Kill(0);  // the node the shipper connected to first
  Write(*store, 20000, rng);
  // Let the live shipper take the second half too, then stop it and
  // finish with --once (which also resumes from the stream).
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ::kill(p, SIGTERM);
  WaitFor(p, 60);
  pid_t q = Spawn({ToolPath(), "ship", src, "--nats", c.urls(), "--stream",
                   c.stream(), "--once", "--timeout", "10", "--give-up", "90"},
                  Log(t, "ship"));
  int rc = WaitFor(q, 150);
  INFO(Slurp(Log(t, "ship")));
  REQUIRE(rc == 0);
  RestoreStats st;
  RestoreAndCompare(c, src, t.File("restored.rmap"), &st);
  CHECK(st.records == 40000);
  CHECK(st.duplicates == 0);
  CHECK(st.gaps == 0);
}

TEST_CASE("follow keeps a replica current", "[replication]") {
  std::unique_ptr<NatsCluster> cp = StartCluster("FOLLOW");
  NatsCluster& c = *cp;
  TempDir t;
  const std::string src = t.File("src.rmap");
  const std::string rep = t.File("replica.rmap");
  Options o = SmallOptions();
  o.create_if_missing = true;
  std::unique_ptr<Store> store = OpenOrDie(src, o);
  std::mt19937_64 rng(11);
  Write(*store, 1000, rng);
  pid_t ship = Spawn({ToolPath(), "ship", src, "--nats", c.urls(), "--stream",
                      c.stream(), "--timeout", "20"},
                     Log(t, "ship"));
  // Wait for the first batch, so that follow finds the store's subject.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  pid_t follow = Spawn({ToolPath(), "follow", "--nats", c.urls(), "--stream",
                        c.stream(), "--timeout", "30", rep},
                       Log(t, "follow"));
  for (int round = 0; round < 5; ++round) {
    Write(*store, 2000, rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const uint64_t want = 11000;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  uint64_t have = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::access(rep.c_str(), F_OK) == 0) {
      Options ro;
      ro.read_only = true;
      auto r = Store::Open(rep, ro);
      if (r.ok()) have = (*r)->Stats().records;
    }
    if (have >= want) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(follow, SIGTERM);
  ::kill(ship, SIGTERM);
  int frc = WaitFor(follow, 60);
  WaitFor(ship, 60);
  INFO(Slurp(Log(t, "follow")) << Slurp(Log(t, "ship")));
  REQUIRE(have == want);
  CHECK(frc == 0);
  CHECK(ReadAll(src) == ReadAll(rep));
}

TEST_CASE("errors are clear and bounded", "[replication]") {
  TempDir t;
  const std::string src = t.File("src.rmap");
  {
    Options o = SmallOptions();
    o.create_if_missing = true;
    std::unique_ptr<Store> store = OpenOrDie(src, o);
    std::mt19937_64 rng(3);
    Write(*store, 500, rng);
  }
  auto run = [&](std::vector<std::string> args, double limit) {
    std::string log = t.File("err.log");
    ::unlink(log.c_str());
    args.insert(args.begin(), ToolPath());
    pid_t p = Spawn(args, log);
    int rc = WaitFor(p, limit);
    return std::make_pair(rc, Slurp(log));
  };

  SECTION("bad URL") {
    auto [rc, out] = run({"ship", src, "--nats", "nats://127.0.0.1:1",
                          "--stream", "X", "--once", "--timeout", "2"},
                         60);
    INFO(out);
    CHECK(rc > 0);
    CHECK(rc < 128);
    CHECK(out.find("cannot connect") != std::string::npos);
  }
  SECTION("cluster cases") {
    std::unique_ptr<NatsCluster> cp = StartCluster("ERRS");
    NatsCluster& c = *cp;
    {
      auto [rc, out] = run({"ship", src, "--nats", c.urls(), "--stream",
                            "NOSUCH", "--once", "--timeout", "5"},
                           60);
      INFO(out);
      CHECK(rc > 0);
      CHECK(out.find("not found") != std::string::npos);
    }
    {
      auto [rc, out] = run({"restore", "--nats", c.urls(), "--stream", "NOSUCH",
                            "--timeout", "5", t.File("r0.rmap")},
                           60);
      INFO(out);
      CHECK(rc > 0);
      CHECK(out.find("not found") != std::string::npos);
    }
    // Another store's batch on this store's subject.
    {
      Options ro;
      ro.read_only = true;
      std::string uuid = UuidHex(OpenOrDie(src, ro)->info().uuid);
      ShipBatch b;
      b.uuid.fill(0xab);
      b.first_sequence = b.last_sequence = 1;
      std::string data(48, '\0');
      EncodeShipRecord(ShipRecord{1, 1, RecordType::kPut, "x"}, &data);
      b.records.resize(1);
      std::string header;
      EncodeShipBatchHeader(b, &header);
      data.replace(0, 48, header);
      natsConnection* nc = nullptr;
      REQUIRE(natsConnection_ConnectTo(&nc, c.url(1).c_str()) == NATS_OK);
      jsCtx* js = nullptr;
      REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
      jsPubAck* pa = nullptr;
      std::string subj = "recmap." + uuid;
      REQUIRE(js_Publish(&pa, js, subj.c_str(), data.data(),
                         static_cast<int>(data.size()), nullptr,
                         nullptr) == NATS_OK);
      jsPubAck_Destroy(pa);
      jsCtx_Destroy(js);
      natsConnection_Destroy(nc);
      auto [rc, out] = run({"ship", src, "--nats", c.urls(), "--stream",
                            c.stream(), "--once", "--timeout", "5"},
                           60);
      INFO(out);
      CHECK(rc > 0);
      CHECK(out.find("another store") != std::string::npos);
    }
    // A server that goes away: all nodes killed under a live shipper.
    {
      TempDir t2;
      const std::string s2 = t2.File("s2.rmap");
      Options o = SmallOptions();
      o.create_if_missing = true;
      std::unique_ptr<Store> store = OpenOrDie(s2, o);
      std::mt19937_64 rng(5);
      Write(*store, 500, rng);
      std::string log = t.File("gone.log");
      pid_t p = Spawn({ToolPath(), "ship", s2, "--nats", c.urls(), "--stream",
                       c.stream(), "--timeout", "2", "--give-up", "3"},
                      log);
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      for (int i = 0; i < 3; ++i) c.Kill(i);
      Write(*store, 500, rng);
      int rc = WaitFor(p, 90);
      std::string out = Slurp(log);
      INFO(out);
      CHECK(rc > 0);
      CHECK(rc < 128);
      CHECK(out.find("recmap:") != std::string::npos);
    }
  }
}

}  // namespace
}  // namespace recmap::testing

namespace recmap::testing {
namespace {

// The name ("n0", "n1", ...) of the stream's current leader, or "".
std::string StreamLeader(const NatsCluster& c) {
  natsConnection* nc = nullptr;
  std::string leader;
  if (natsConnection_ConnectTo(&nc, c.urls().c_str()) != NATS_OK) return "";
  jsCtx* js = nullptr;
  if (natsConnection_JetStream(&js, nc, nullptr) == NATS_OK) {
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, js, c.stream().c_str(), nullptr, nullptr) ==
            NATS_OK &&
        si->Cluster != nullptr && si->Cluster->Leader != nullptr)
      leader = si->Cluster->Leader;
    if (si != nullptr) jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
  }
  natsConnection_Destroy(nc);
  return leader;
}

// Ships `store` in this process as `recmap ship` does: a new Shipper (new
// connection, resume point read back) after each error, until `done` is
// set and everything is acknowledged. Returns the number of re-creates;
// *resyncs gets the in-Run resyncs of all Shippers.
int ShipInProcess(Store& store, const ShipperOptions& so,
                  const std::atomic<bool>& done, uint64_t* resyncs,
                  std::string* errors) {
  int recreates = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (std::chrono::steady_clock::now() < deadline) {
    absl::StatusOr<std::unique_ptr<Shipper>> sh = Shipper::Create(store, so);
    absl::Status s = sh.status();
    if (sh.ok()) {
      // Live until the writer is done, then until caught up.
      s = (*sh)->Run(false, [&] { return !done.load(); });
      if (s.ok()) s = (*sh)->Run(true, [] { return true; });
      *resyncs += (*sh)->progress().resyncs;
      if (s.ok()) return recreates;
    }
    *errors += s.ToString() + "\n";
    ++recreates;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  *errors += "gave up after 240 s\n";
  return -1;
}

TEST_CASE(
    "a publish failing mid-window (stream leader SIGSTOPped, then another "
    "node SIGKILLed) leaves no gap and no duplicate",
    "[replication]") {
  std::unique_ptr<NatsCluster> cp = StartCluster("MIDWINDOW");
  NatsCluster& c = *cp;
  TempDir t;
  const std::string src = t.File("src.rmap");
  Options o = SmallOptions();
  o.create_if_missing = true;
  std::unique_ptr<Store> store = OpenOrDie(src, o);
  ShipperOptions so;
  so.nats.url = c.urls();
  so.nats.stream = c.stream();
  so.nats.timeout = std::chrono::milliseconds(1500);
  so.max_in_flight = 256;
  so.max_batch_records = 16;  // many batches in flight at any time
  std::atomic<bool> done{false};
  uint64_t resyncs = 0;
  std::string errors;
  int recreates = 0;
  std::thread shipper(
      [&] { recreates = ShipInProcess(*store, so, done, &resyncs, &errors); });
  const int kRecords = 60000;
  std::mt19937_64 rng(21);
  // Writes in steps of 500 records, every 50 ms (about 10,000 records/s),
  // so that batches are in flight whenever a node is stopped or killed.
  auto write_for = [&](int steps) {
    for (int i = 0; i < steps; ++i) {
      Write(*store, 500, rng);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  write_for(20);
  std::string leader = StreamLeader(c);
  INFO("leader " << leader);
  REQUIRE(leader.size() == 2);
  const int stopped = leader[1] - '0';
  c.Stop(stopped);
  write_for(60);  // 3 s: acks time out (1.5 s), a new leader is elected
  c.Continue(stopped);
  write_for(20);
  // Kill the (possibly new) leader too, unless it is the one just resumed.
  std::string leader2 = StreamLeader(c);
  int killed = -1;
  if (leader2.size() == 2) {
    killed = leader2[1] - '0';
    c.Kill(killed);
  }
  write_for(20);
  done.store(true);
  shipper.join();
  INFO(errors);
  REQUIRE(recreates >= 0);
  RestoreStats st;
  RestoreAndCompare(c, src, t.File("restored.rmap"), &st);
  std::printf(
      "mid-window failure test: leader n%d SIGSTOPped 3 s, node n%d "
      "SIGKILLed; %d records, %llu batches restored, %llu resyncs, %d "
      "reconnects, duplicates %llu, gaps %llu\n",
      stopped, killed, kRecords, static_cast<unsigned long long>(st.batches),
      static_cast<unsigned long long>(resyncs), recreates,
      static_cast<unsigned long long>(st.duplicates),
      static_cast<unsigned long long>(st.gaps));
  CHECK(st.records == static_cast<uint64_t>(kRecords));
  CHECK(st.duplicates == 0);
  CHECK(st.gaps == 0);
  // The stop did make publishes fail mid-window (else this proves nothing).
  CHECK(resyncs + static_cast<uint64_t>(recreates) >= 1);
}

// Appends a record every `period` whose value starts with its append time
// (steady clock, ns); the test tails the follower's replica and takes, for
// each record, the time it became visible there minus its append time.
TEST_CASE("a follower under steady load: every record visible, lag measured",
          "[replication]") {
  std::unique_ptr<NatsCluster> cp = StartCluster("LAG");
  NatsCluster& c = *cp;
  TempDir t;
  const std::string src = t.File("src.rmap");
  const std::string rep = t.File("replica.rmap");
  Options o = SmallOptions();
  o.create_if_missing = true;
  std::unique_ptr<Store> store = OpenOrDie(src, o);
  using Clock = std::chrono::steady_clock;
  auto now_ns = [] {
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            Clock::now().time_since_epoch())
            .count());
  };
  auto stamp = [&](uint64_t id) {
    std::string v(100, 'x');
    uint64_t ns = now_ns();
    std::memcpy(v.data(), &ns, 8);
    REQUIRE(store->Put(id, v).ok());
  };
  stamp(0);  // the first batch creates the subject and the replica
  pid_t ship = Spawn({ToolPath(), "ship", src, "--nats", c.urls(), "--stream",
                      c.stream(), "--timeout", "20"},
                     Log(t, "ship"));
  pid_t follow = Spawn({ToolPath(), "follow", "--nats", c.urls(), "--stream",
                        c.stream(), "--timeout", "30", rep},
                       Log(t, "follow"));
  // The follower creates the replica on the first batch; until its header
  // is written the file may exist and be empty: retry the open.
  Options ro;
  ro.read_only = true;
  std::unique_ptr<Store> replica;
  absl::Status open_status;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (replica == nullptr && Clock::now() < deadline) {
    if (::access(rep.c_str(), F_OK) == 0) {
      absl::StatusOr<std::unique_ptr<Store>> r = Store::Open(rep, ro);
      open_status = r.status();
      if (r.ok()) replica = std::move(*r);
    }
    if (replica == nullptr)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  INFO(open_status.ToString()
       << "\n"
       << Slurp(Log(t, "follow")) << Slurp(Log(t, "ship")));
  REQUIRE(replica != nullptr);
  TailerOptions to;
  to.from_sequence = 1;
  absl::StatusOr<std::unique_ptr<Tailer>> tailer = Tailer::Create(*replica, to);
  REQUIRE(tailer.ok());

  // Steady load: 2,000 records/s for 10 s, one every 500 us.
  const int kRecords = 20000;
  std::thread writer([&] {
    auto next = Clock::now();
    for (int i = 1; i <= kRecords; ++i) {
      next += std::chrono::microseconds(500);
      std::this_thread::sleep_until(next);
      stamp(static_cast<uint64_t>(i));
    }
  });
  std::vector<double> lag_ms;
  uint64_t seen = 0;
  auto end = Clock::now() + std::chrono::seconds(120);
  while (seen < static_cast<uint64_t>(kRecords) + 1 && Clock::now() < end) {
    absl::StatusOr<std::optional<RecordView>> got =
        (*tailer)->Next(std::chrono::milliseconds(200));
    REQUIRE(got.ok());
    if (!got->has_value()) continue;
    const RecordView& v = **got;
    uint64_t at = 0;
    REQUIRE(v.value.size() == 100);
    std::memcpy(&at, v.value.data(), 8);
    if (v.id != 0) lag_ms.push_back((now_ns() - at) / 1e6);
    ++seen;
  }
  writer.join();
  tailer->reset();
  ::kill(follow, SIGTERM);
  ::kill(ship, SIGTERM);
  int frc = WaitFor(follow, 60);
  WaitFor(ship, 60);
  REQUIRE(seen == static_cast<uint64_t>(kRecords) + 1);
  std::sort(lag_ms.begin(), lag_ms.end());
  auto pct = [&](double p) {
    return lag_ms[std::min(lag_ms.size() - 1,
                           static_cast<size_t>(p * lag_ms.size()))];
  };
  std::printf(
      "follower lag under 2,000 records/s for 10 s (%zu records, append to "
      "visible in the replica): p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
      lag_ms.size(), pct(0.5), pct(0.99), lag_ms.back());
  // A bound that only catches a follower that stalls, not a slow machine.
  CHECK(lag_ms.back() < 10000.0);
  CHECK(frc == 0);
}

// Runs the recmap tool; returns its exit code and output.
std::pair<int, std::string> Tool(const TempDir& t,
                                 std::vector<std::string> args,
                                 double limit = 120) {
  std::string log = t.File("tool.log");
  ::unlink(log.c_str());
  args.insert(args.begin(), ToolPath());
  pid_t p = Spawn(args, log);
  int rc = WaitFor(p, limit);
  return {rc, Slurp(log)};
}

TEST_CASE(
    "a source with holes in its sequence space restores with the same ids, "
    "sequences, values and deletes (dump --json equal after compaction)",
    "[replication]") {
  std::unique_ptr<NatsCluster> cp = StartCluster("HOLES");
  NatsCluster& c = *cp;
  TempDir t;
  const std::string src = t.File("src.rmap");
  {
    Options o = SmallOptions();
    o.create_if_missing = true;
    std::unique_ptr<Store> store = OpenOrDie(src, o);
    std::mt19937_64 rng(9);
    Write(*store, 6000, rng);  // supersedes and deletes: holes at compaction
  }
  // Compaction keeps the live records' sequences: the new store (a new
  // uuid) has holes where superseded records and tombstones were.
  CompactionOptions co;
  REQUIRE(Compact(src, co).ok());
  {
    std::unique_ptr<Store> store = OpenOrDie(src, SmallOptions());
    std::mt19937_64 rng(10);
    Write(*store, 3000, rng);  // more puts and deletes after the holes
    // An explicit hole of 1,000 numbers (as a writer's cut tail leaves).
    absl::StatusOr<std::unique_ptr<Writer>> w = store->NewWriter();
    REQUIRE(w.ok());
    const uint64_t next = store->Stats().next_sequence;
    REQUIRE(StorePeer::Rep(*store)
                .WriteWithSequence(**w, RecordType::kPut, 77, next + 1000,
                                   "after the hole")
                .ok());
    REQUIRE(
        StorePeer::Rep(*store)
            .WriteWithSequence(**w, RecordType::kDelete, 78, next + 1001, "")
            .ok());
  }
  std::vector<Rec> before = ReadAll(src);
  uint64_t holes = 0;
  {
    std::vector<uint64_t> seqs;
    for (const Rec& r : before) seqs.push_back(std::get<1>(r));
    std::sort(seqs.begin(), seqs.end());
    for (size_t i = 1; i < seqs.size(); ++i) holes += seqs[i] - seqs[i - 1] - 1;
  }
  REQUIRE(holes > 1000);
  {
    auto [rc, out] = Tool(t, {"ship", src, "--nats", c.urls(), "--stream",
                              c.stream(), "--once", "--timeout", "20"});
    INFO(out);
    REQUIRE(rc == 0);
  }
  const std::string rep = t.File("restored.rmap");
  {
    auto [rc, out] = Tool(t, {"restore", "--nats", c.urls(), "--stream",
                              c.stream(), "--timeout", "20", rep});
    INFO(out);
    REQUIRE(rc == 0);
    CHECK(out.find("gaps 0") != std::string::npos);
    CHECK(out.find("duplicates 0") != std::string::npos);
  }
  // Before compaction: every record (puts, deletes, superseded) with its
  // id, sequence, type and value.
  CHECK(ReadAll(rep) == before);
  for (const std::string& f : {src, rep}) {
    auto [rc, out] = Tool(t, {"compact", f, "--quiet"});
    INFO(out);
    REQUIRE(rc == 0);
  }
  auto [rc1, dump_src] = Tool(t, {"dump", src, "--json"});
  auto [rc2, dump_rep] = Tool(t, {"dump", rep, "--json"});
  REQUIRE(rc1 == 0);
  REQUIRE(rc2 == 0);
  std::printf(
      "holes test: %zu records, %llu sequence numbers unused, dump --json "
      "after compaction: %zu bytes each, equal: %s\n",
      before.size(), static_cast<unsigned long long>(holes), dump_src.size(),
      dump_src == dump_rep ? "yes" : "no");
  CHECK(dump_src.size() > 1000);
  CHECK(dump_src == dump_rep);
}

}  // namespace
}  // namespace recmap::testing
