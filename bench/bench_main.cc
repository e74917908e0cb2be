// recmap_bench: recmap against LMDB 0.9 (and a raw populated mmap) on the
// same data in the same run. Prints a table; with --json, one JSON object
// per workload on stdout (the table then goes to stderr). Every engine's
// measurement runs in a child process of its own. See docs/BENCHMARKS.md.
//
//   recmap_bench [--json] [--dir DIR] [--records N] [--big-records N]
//                [--open-records N] [--repeat N] [--only w1,w2,...]
//
// Each throughput is the median of --repeat runs (default 3), for every
// engine alike; the open rows run once (they share one crashed store).
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench_util.h"
#include "workloads.h"

namespace recmap::bench {
namespace {

struct Config {
  bool json = false;
  std::string dir = ".";
  uint64_t records = 2000000;
  uint64_t big_records = 200000;
  uint64_t open_records = 10000000;
  uint64_t lmdb_txn = 100000;
  int repeat = 3;  // runs per measurement; the median is kept
  std::set<std::string> only;
};

// One row of the table / one JSON object.
struct Row {
  std::string workload;
  std::string what;  // human description
  uint64_t records = 0;
  Measure recmap;
  std::string base_name;  // "lmdb", "recmap_1_writer", or "" (no baseline)
  Measure base;
  bool has_raw = false;
  Measure raw;
  // Target: ratio >= min_ratio (if > 0); raw fraction >= min_raw (if > 0);
  // seconds <= max_seconds (if > 0); extra <= max_extra (if > 0).
  double min_ratio = 0, min_raw = 0, max_seconds = 0, max_extra = 0;
  std::string extra_name;  // what recmap.extra means, if reported
};

double Ratio(const Row& r) {
  return r.base.OpsPerSec() > 0 ? r.recmap.OpsPerSec() / r.base.OpsPerSec() : 0;
}
double RawFraction(const Row& r) {
  return r.raw.OpsPerSec() > 0 ? r.recmap.OpsPerSec() / r.raw.OpsPerSec() : 0;
}

// "yes" / "no" / "" (no target).
std::string Met(const Row& r) {
  bool any = false, ok = r.recmap.ok && (r.base_name.empty() || r.base.ok);
  if (r.min_ratio > 0) any = true, ok = ok && Ratio(r) >= r.min_ratio;
  if (r.min_raw > 0) any = true, ok = ok && RawFraction(r) >= r.min_raw;
  if (r.max_seconds > 0)
    any = true, ok = ok && r.recmap.seconds <= r.max_seconds;
  if (r.max_extra > 0) any = true, ok = ok && r.recmap.extra <= r.max_extra;
  if (!any) return "";
  return ok ? "yes" : "no";
}

std::string Target(const Row& r) {
  std::vector<std::string> t;
  if (r.min_ratio > 0)
    t.push_back(absl::StrFormat(">=%gx %s", r.min_ratio,
                                r.base_name == "lmdb" ? "LMDB" : "1 writer"));
  if (r.min_raw > 0)
    t.push_back(absl::StrFormat(">=%g%% raw", r.min_raw * 100));
  if (r.max_seconds > 0)
    t.push_back(absl::StrFormat("<=%g ms", r.max_seconds * 1000));
  if (r.max_extra > 0) t.push_back(absl::StrFormat("<=%g B/rec", r.max_extra));
  return absl::StrJoin(t, ", ");
}

std::string Json(const Row& r) {
  std::string s = absl::StrFormat(
      "{\"workload\":\"%s\",\"description\":\"%s\",\"records\":%d,"
      "\"recmap_ok\":%s,\"recmap_ops_per_sec\":%.0f,\"recmap_seconds\":%.6f,"
      "\"recmap_peak_rss_bytes\":%d,\"recmap_peak_rss_per_record\":%.1f",
      r.workload, r.what, r.records, r.recmap.ok ? "true" : "false",
      r.recmap.OpsPerSec(), r.recmap.seconds, r.recmap.peak_rss,
      r.records ? double(r.recmap.peak_rss) / r.records : 0.0);
  if (!r.base_name.empty()) {
    s += absl::StrFormat(
        ",\"baseline\":\"%s\",\"%s_ok\":%s,\"%s_ops_per_sec\":%.0f,"
        "\"%s_peak_rss_per_record\":%.1f,\"ratio\":%.3f",
        r.base_name, r.base_name, r.base.ok ? "true" : "false", r.base_name,
        r.base.OpsPerSec(), r.base_name,
        r.records ? double(r.base.peak_rss) / r.records : 0.0, Ratio(r));
  }
  if (r.has_raw) {
    s += absl::StrFormat(",\"raw_ops_per_sec\":%.0f,\"raw_fraction\":%.3f",
                         r.raw.OpsPerSec(), RawFraction(r));
  }
  if (!r.extra_name.empty())
    s += absl::StrFormat(",\"%s\":%.3f", r.extra_name, r.recmap.extra);
  const std::string met = Met(r);
  s +=
      absl::StrFormat(",\"target\":\"%s\",\"met\":%s", Target(r),
                      met.empty() ? "null" : (met == "yes" ? "true" : "false"));
  std::string err = r.recmap.error.empty() ? r.base.error : r.recmap.error;
  if (!err.empty()) {
    for (char& c : err)
      if (c == '"' || c == '\\') c = '\'';
    s += absl::StrFormat(",\"error\":\"%s\"", err);
  }
  return s + "}";
}

std::string Mops(const Measure& m) {
  if (!m.ok) return "FAIL";
  return absl::StrFormat("%.2f", m.OpsPerSec() / 1e6);
}

void PrintTable(FILE* out, const std::vector<Row>& rows) {
  absl::FPrintF(out, "%-22s %9s %9s %8s %9s %7s %9s  %-26s %s\n", "workload",
                "recmap", "baseline", "ratio", "raw", "of raw", "rss B/rec",
                "target", "met");
  absl::FPrintF(out, "%-22s %9s %9s %8s %9s %7s %9s\n", "", "M/s", "M/s", "",
                "M/s", "", "");
  for (const Row& r : rows) {
    std::string rec = Mops(r.recmap), base = "-", ratio = "-", raw = "-",
                frac = "-";
    if (r.max_seconds > 0 && r.recmap.ok)
      rec = absl::StrFormat("%.0f ms", r.recmap.seconds * 1000);
    if (!r.base_name.empty()) {
      base = Mops(r.base);
      ratio = absl::StrFormat("%.2fx", Ratio(r));
    }
    if (r.has_raw) {
      raw = Mops(r.raw);
      frac = absl::StrFormat("%.0f%%", RawFraction(r) * 100);
    }
    std::string rss =
        r.records
            ? absl::StrFormat("%.0f", double(r.recmap.peak_rss) / r.records)
            : "-";
    std::string target = Target(r);
    if (!r.extra_name.empty())
      target += absl::StrFormat(" [%s=%.1f]", r.extra_name, r.recmap.extra);
    absl::FPrintF(out, "%-22s %9s %9s %8s %9s %7s %9s  %-26s %s\n", r.workload,
                  rec, base, ratio, raw, frac, rss, target, Met(r));
    if (!r.recmap.error.empty())
      absl::FPrintF(out, "  recmap error: %s\n", r.recmap.error);
    if (!r.base.error.empty())
      absl::FPrintF(out, "  baseline error: %s\n", r.base.error);
  }
}

class Runner {
 public:
  explicit Runner(Config c) : c_(std::move(c)) {}

  bool Want(const std::string& w) const {
    return c_.only.empty() || c_.only.count(w) > 0;
  }

  void Emit(Row r) {
    FILE* human = c_.json ? stderr : stdout;
    if (c_.json) {
      std::printf("%s\n", Json(r).c_str());
      std::fflush(stdout);
    }
    absl::FPrintF(human, "  %-22s recmap %s  baseline %s  %s\n", r.workload,
                  Mops(r.recmap), r.base_name.empty() ? "-" : Mops(r.base),
                  Met(r));
    std::fflush(human);
    rows_.push_back(std::move(r));
  }

  // A fresh subdirectory of the scratch dir for one measurement, removed
  // after it.
  std::string Sub(const std::string& name) {
    std::string d = c_.dir + "/" + name;
    ::mkdir(d.c_str(), 0755);
    return d;
  }

  // Runs a measurement c_.repeat times, each in a child process of its own
  // (with a fresh scratch subdirectory `name` passed to `fn`, removed after
  // it, unless `name` is empty) and keeps the median run. Throughput on a
  // shared VM swings by up to 2x between back-to-back runs, mostly in
  // single outliers either way (LMDB's 4 KiB append once ran at 3x its
  // usual speed); the median is applied to every engine alike. A failed
  // run is returned as it is.
  Measure Median(const std::string& name,
                 const std::function<Measure(const std::string&)>& fn) {
    std::vector<Measure> runs;
    for (int i = 0; i < c_.repeat; ++i) {
      const std::string d = name.empty() ? std::string() : Sub(name);
      Measure m = RunInChild([&] { return fn(d); });
      if (!d.empty()) RemovePath(d);
      if (!m.ok) return m;
      runs.push_back(std::move(m));
    }
    std::sort(runs.begin(), runs.end(), [](const Measure& a, const Measure& b) {
      return a.OpsPerSec() < b.OpsPerSec();
    });
    return runs[runs.size() / 2];
  }

  void Append(const std::string& name, uint64_t n, size_t len, double ratio,
              double raw) {
    if (!Want(name)) return;
    Row r;
    r.workload = name;
    r.what = absl::StrFormat("append %d-byte values, 1 writer", len);
    r.records = n;
    r.recmap = Median(
        name, [&](const std::string& d) { return RecmapAppend(d, n, len); });
    r.base_name = "lmdb";
    r.base = Median(name, [&](const std::string& d) {
      return LmdbAppend(d, n, len, c_.lmdb_txn);
    });
    r.has_raw = true;
    r.raw = Median(name,
                   [&](const std::string& d) { return RawAppend(d, n, len); });
    r.min_ratio = ratio;
    r.min_raw = raw;
    Emit(std::move(r));
  }

  void RandomPut() {
    if (!Want("random_put")) return;
    Row r;
    r.workload = "random_put";
    r.what = "put 100-byte values, ids shuffled";
    r.records = c_.records;
    r.recmap = Median("random_put", [&](const std::string& d) {
      return RecmapRandomPut(d, c_.records, 100);
    });
    r.base_name = "lmdb";
    r.base = Median("random_put", [&](const std::string& d) {
      return LmdbRandomPut(d, c_.records, 100, c_.lmdb_txn);
    });
    Emit(std::move(r));
  }

  // Random get and scan read one store of each engine, built untimed.
  void Reads() {
    if (!Want("random_get") && !Want("random_multiget") && !Want("scan"))
      return;
    const uint64_t n = c_.records;
    std::string d = Sub("reads");
    const std::string rpath = d + "/reads.rmap", lpath = d + "/lmdb";
    Measure build = RunInChild([&] {
      Measure m;
      m.ok = RecmapBuild(rpath, n, 100, &m.error);
      if (m.ok) m.ok = LmdbBuild(lpath, n, 100, &m.error);
      return m;
    });
    // One row against LMDB over the prebuilt stores; `lmdb` null reuses the
    // previous row's LMDB measurement.
    auto read_row = [&](const char* name, const char* what, double min_ratio,
                        const std::function<Measure()>& recmap,
                        const std::function<Measure()>& lmdb) {
      Row r;
      r.workload = name;
      r.what = what;
      r.records = n;
      r.base_name = "lmdb";
      r.min_ratio = min_ratio;
      if (build.ok) {
        r.recmap = Median("", [&](auto&) { return recmap(); });
        r.base = lmdb ? Median("", [&](auto&) { return lmdb(); })
                      : rows_.back().base;
      } else {
        r.recmap.error = build.error;
      }
      return r;
    };
    if (Want("random_get")) {
      Row r = read_row(
          "random_get", "get 100-byte values by shuffled id", 5,
          [&] { return RecmapRandomGet(rpath, n); },
          [&] { return LmdbRandomGet(lpath, n); });
      r.extra_name = "index_bytes_per_record";
      Emit(std::move(r));
      if (build.ok) {
        Row m;
        m.workload = "index_memory";
        m.what = "offset index heap bytes per record";
        m.records = n;
        m.recmap = rows_.back().recmap;
        m.recmap.seconds = 0;
        m.extra_name = "index_bytes_per_record";
        m.max_extra = 32;
        Emit(std::move(m));
      }
    }
    if (Want("random_multiget")) {
      Emit(read_row(
          "random_multiget",
          "the same gets, recmap MultiGet of 64 ids per call", 5,
          [&] { return RecmapRandomMultiGet(rpath, n, 64); },
          [&] { return LmdbRandomGet(lpath, n); }));
    }
    if (Want("scan")) {
      Emit(read_row(
          "scan", "full scan, recmap checksums verified", 1.5,
          [&] { return RecmapScan(rpath, n); },
          [&] { return LmdbScan(lpath, n); }));
      // The same scan without ForEachRecord's verifier thread: what one
      // core does (LMDB's cursor walk is one thread), against the scan
      // row's LMDB run.
      Emit(read_row(
          "scan_1thread", "the same scan, recmap on the calling thread only", 0,
          [&] { return RecmapScan(rpath, n, /*verify_thread=*/false); },
          nullptr));
    }
    RemovePath(d);
  }

  void Writers() {
    if (!Want("writers_2")) return;
    Row r;
    r.workload = "writers_2";
    r.what = "2 writer processes vs 1, 100-byte appends";
    r.records = c_.records;
    r.base_name = "recmap_1_writer";
    r.base = Median("writers", [&](const std::string& d) {
      return RecmapWriters(d, c_.records, 100, 1);
    });
    r.recmap = Median("writers", [&](const std::string& d) {
      return RecmapWriters(d, c_.records, 100, 2);
    });
    r.min_ratio = 1.7;
    Emit(std::move(r));
  }

  void Durable() {
    if (!Want("durable_batch")) return;
    const uint64_t batches = 100, batch = 1000;
    Row r;
    r.workload = "durable_batch";
    r.what = "batches of 1000 100-byte appends, then Sync / commit with sync";
    r.records = batches * batch;
    r.recmap = Median("durable", [&](const std::string& d) {
      return RecmapDurable(d, batches, batch, 100);
    });
    r.base_name = "lmdb";
    r.base = Median("durable", [&](const std::string& d) {
      return LmdbDurable(d, batches, batch, 100);
    });
    Emit(std::move(r));
  }

  void Compaction() {
    if (!Want("compact")) return;
    Row r;
    r.workload = "compact";
    r.what = "compact a store with half its records superseded";
    r.records = c_.records;
    r.recmap = Median("compact", [&](const std::string& d) {
      return RecmapCompact(d, c_.records, 100);
    });
    r.base_name = "lmdb";
    r.base = Median("compact", [&](const std::string& d) {
      return LmdbCompact(d, c_.records, 100);
    });
    r.extra_name = "size_after_over_before";
    Emit(std::move(r));
  }

  // Open with open_records records written by one writer process that was
  // then SIGKILLed, no handle ever having closed cleanly: with the index its
  // background index writer left (sealed regions), with no index (the
  // whole log scanned), and after the clean close that followed.
  void Opens() {
    if (!Want("open")) return;
    const uint64_t n = c_.open_records;
    std::string d = Sub("open");
    const std::string path = d + "/open.rmap";
    std::string err;
    bool ok = RecmapCrashWrite(path, n, 100, &err);
    auto row = [&](const char* name, const char* what, double max_s,
                   bool use_index) {
      Row r;
      r.workload = name;
      r.what = what;
      r.records = n;
      if (ok) {
        r.recmap = RunInChild([&] { return RecmapOpen(path, n, use_index); });
      } else {
        r.recmap.error = err;
      }
      r.recmap.ops = 1;
      r.max_seconds = max_s;
      r.extra_name = "close_seconds";
      ok = ok && r.recmap.ok;
      Emit(std::move(r));
    };
    // First: the open right after the crash (it also scrubs the dead
    // writer's tail); its close persists the whole index.
    row("open_crash", "open after kill -9, index written in the background",
        1.0, true);
    row("open_crash_no_index", "open after kill -9, index not used (rescan)",
        1.0, false);
    row("open_clean", "open after a clean close", 0.2, true);
    RemovePath(d);
  }

  const std::vector<Row>& rows() const { return rows_; }
  const Config& config() const { return c_; }

 private:
  Config c_;
  std::vector<Row> rows_;
};

int Main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--json") {
      c.json = true;
    } else if (a == "--dir") {
      c.dir = next();
    } else if (a == "--records") {
      c.records = std::stoull(next());
    } else if (a == "--big-records") {
      c.big_records = std::stoull(next());
    } else if (a == "--open-records") {
      c.open_records = std::stoull(next());
    } else if (a == "--repeat") {
      c.repeat = std::max(1, std::stoi(next()));
    } else if (a == "--only") {
      for (auto w : absl::StrSplit(next(), ',')) c.only.insert(std::string(w));
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: recmap_bench [--json] [--dir DIR] [--records N]\n"
          "  [--big-records N] [--open-records N] [--repeat N]\n"
          "  [--only w1,w2,...]\n"
          "workloads: append_16 append_100 append_4k random_put random_get\n"
          "  random_multiget scan writers_2 durable_batch compact open\n");
      return 0;
    } else {
      std::fprintf(stderr, "unknown argument %s (try --help)\n", a.c_str());
      return 2;
    }
  }
  const std::string scratch = MakeScratch(c.dir);
  if (scratch.empty()) {
    std::fprintf(stderr, "cannot create a scratch directory in %s\n",
                 c.dir.c_str());
    return 1;
  }
  c.dir = scratch;
  Runner run(c);
  const double t0 = Now();
  run.Append("append_100", c.records, 100, 8, 0.70);
  run.Append("append_16", c.records, 16, 5, 0);
  run.Append("append_4k", c.big_records, 4096, 2, 0);
  run.RandomPut();
  run.Reads();
  run.Writers();
  run.Durable();
  run.Compaction();
  run.Opens();
  RemoveScratch(scratch);
  FILE* out = c.json ? stderr : stdout;
  absl::FPrintF(out, "\n");
  PrintTable(out, run.rows());
  absl::FPrintF(out, "\ntotal %.1f s\n", Now() - t0);
  bool all_ok = true;
  for (const Row& r : run.rows())
    all_ok = all_ok && r.recmap.ok && (r.base_name.empty() || r.base.ok);
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace recmap::bench

int main(int argc, char** argv) { return recmap::bench::Main(argc, argv); }
