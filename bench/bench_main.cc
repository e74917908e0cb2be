// recmap_bench: recmap against LMDB 0.9, a Boost.Interprocess
// managed_mapped_file with a mutex per append (the seed's approach in C++)
// and the physical limit (raw_fresh) on the same data in the same run.
// Prints a table; with --json, one JSON object per workload on stdout (the
// table then goes to stderr). Every engine's measurement runs in a child
// process of its own. See docs/BENCHMARKS.md.
//
//   recmap_bench [--json] [--dir DIR] [--records N] [--big-records N]
//                [--open-records N] [--repeat N] [--only w1,w2,...]
//                [--sustained-seconds S] [--disk-bytes N]
//
// The engines of a row run interleaved for --repeat rounds (default 5);
// each throughput is the median of its runs and each ratio the median of
// the per-round ratios, printed with their range. The open rows run once
// (they share one crashed store), and so does the sustained row (a minute
// per engine).
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

#include "absl/strings/match.h"
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
  int repeat = 5;  // interleaved rounds per row; medians are kept
  double sustained_seconds = 60;            // per engine, one round
  uint64_t disk_bytes = uint64_t{2} << 30;  // per disk bandwidth figure
  std::set<std::string> only;
};

// Per-round ratios of recmap to another engine of the same row: engines
// run interleaved, one run each per round, so each ratio compares runs
// made within seconds of each other.
struct Spread {
  bool has = false;
  double med = 0, min = 0, max = 0;
};

// One engine of a row: its median run and its per-round ratio spread.
struct Side {
  std::string name;  // "" when the row has no such engine
  Measure m;
  Spread ratio;  // recmap / this engine, per round
  bool has() const { return !name.empty(); }
};

// One row of the table / one JSON object.
struct Row {
  std::string workload;
  std::string what;  // human description
  uint64_t records = 0;
  Measure recmap;
  Side base;  // "lmdb", "recmap_1_writer", ...
  Side raw;   // the physical limit, "raw_fresh"
  Side peer;  // "bip": Boost.Interprocess, the seed's approach
  // Target: ratio >= min_ratio (if > 0); raw fraction >= min_raw (if > 0);
  // seconds <= max_seconds (if > 0); extra <= max_extra (if > 0).
  double min_ratio = 0, min_raw = 0, max_seconds = 0, max_extra = 0;
  std::string extra_name;  // what recmap.extra means, if reported
  bool sustained = false;  // the sustained row: steady rates, MB/s
};

// A run's throughput: the steady rate for the sustained rows (the last two
// thirds of the run, past the page cache's absorption), else the average.
double Ops(const Measure& m) {
  return m.steady_ops_per_sec > 0 ? m.steady_ops_per_sec : m.OpsPerSec();
}

double RatioOf(const Measure& a, const Side& s) {
  if (s.ratio.has) return s.ratio.med;
  return Ops(s.m) > 0 ? Ops(a) / Ops(s.m) : 0;
}
double Ratio(const Row& r) { return RatioOf(r.recmap, r.base); }
double RawFraction(const Row& r) { return RatioOf(r.recmap, r.raw); }

std::string BaseLabel(const std::string& name) {
  if (name == "lmdb") return "LMDB";
  if (name == "recmap_1_writer") return "1 writer";
  return name;
}

// "yes" / "no" / "" (no target).
std::string Met(const Row& r) {
  bool any = false, ok = r.recmap.ok && (!r.base.has() || r.base.m.ok) &&
                         (!r.raw.has() || r.raw.m.ok);
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
    t.push_back(
        absl::StrFormat(">=%gx %s", r.min_ratio, BaseLabel(r.base.name)));
  if (r.min_raw > 0)
    t.push_back(absl::StrFormat(">=%g%% raw", r.min_raw * 100));
  if (r.max_seconds > 0)
    t.push_back(absl::StrFormat("<=%g ms", r.max_seconds * 1000));
  if (r.max_extra > 0) {
    t.push_back(absl::EndsWith(r.extra_name, "seconds")
                    ? absl::StrFormat("close <=%g ms", r.max_extra * 1000)
                    : absl::StrFormat("<=%g B/rec", r.max_extra));
  }
  return absl::StrJoin(t, ", ");
}

std::string JsonSide(const Row& r, const Side& s, const char* ratio_key) {
  if (!s.has()) return "";
  std::string j = absl::StrFormat(
      ",\"%s\":{\"ok\":%s,\"ops_per_sec\":%.0f,\"cpu_ns_per_op\":%.1f,"
      "\"peak_rss_per_record\":%.1f,\"%s\":%.3f",
      s.name, s.m.ok ? "true" : "false", Ops(s.m), s.m.CpuNsPerOp(),
      r.records ? double(s.m.peak_rss) / r.records : 0.0, ratio_key,
      RatioOf(r.recmap, s));
  if (s.ratio.has)
    j += absl::StrFormat(",\"%s_min\":%.3f,\"%s_max\":%.3f", ratio_key,
                         s.ratio.min, ratio_key, s.ratio.max);
  return j + "}";
}

// Steady megabytes per second (10^6) of the file a sustained run wrote.
double MBps(const Measure& m) {
  return m.ops > 0 ? Ops(m) * (m.bytes / double(m.ops)) / 1e6 : 0;
}

std::string Json(const Row& r) {
  std::string s = absl::StrFormat(
      "{\"workload\":\"%s\",\"description\":\"%s\",\"records\":%d,"
      "\"recmap_ok\":%s,\"recmap_ops_per_sec\":%.0f,\"recmap_seconds\":%.6f,"
      "\"recmap_cpu_ns_per_op\":%.1f,"
      "\"recmap_peak_rss_bytes\":%d,\"recmap_peak_rss_per_record\":%.1f",
      r.workload, r.what, r.records, r.recmap.ok ? "true" : "false",
      Ops(r.recmap), r.recmap.seconds, r.recmap.CpuNsPerOp(), r.recmap.peak_rss,
      r.records ? double(r.recmap.peak_rss) / r.records : 0.0);
  if (r.base.has()) {
    // Flat keys kept for bench/plot.sh.
    s += absl::StrFormat(
        ",\"baseline\":\"%s\",\"%s_ops_per_sec\":%.0f,"
        "\"ratio\":%.3f",
        r.base.name, r.base.name, Ops(r.base.m), Ratio(r));
    s += JsonSide(r, r.base, "ratio");
  }
  if (r.raw.has()) {
    s += absl::StrFormat(",\"raw_ops_per_sec\":%.0f,\"raw_fraction\":%.3f",
                         Ops(r.raw.m), RawFraction(r));
    s += JsonSide(r, r.raw, "fraction");
  }
  s += JsonSide(r, r.peer, "ratio");
  if (r.sustained) {
    auto fig = [&](const char* name, const Measure& m) {
      return absl::StrFormat(
          ",\"%s\":{\"ok\":%s,\"seconds\":%.3f,\"records\":%d,"
          "\"average_ops_per_sec\":%.0f,\"steady_ops_per_sec\":%.0f,"
          "\"worst_1s_ops_per_sec\":%.0f,\"bytes\":%.0f,"
          "\"steady_mb_per_sec\":%.1f,\"flush_seconds\":%.3f,"
          "\"cpu_ns_per_op\":%.1f}",
          name, m.ok ? "true" : "false", m.seconds, m.ops, m.OpsPerSec(),
          Ops(m), m.worst_ops_per_sec, m.bytes, MBps(m), m.flush_seconds,
          m.CpuNsPerOp());
    };
    s += fig("sustained_recmap", r.recmap);
    for (const Side* side : {&r.base, &r.raw, &r.peer})
      if (side->has()) s += fig(("sustained_" + side->name).c_str(), side->m);
  }
  if (!r.extra_name.empty())
    s += absl::StrFormat(",\"%s\":%.3f", r.extra_name, r.recmap.extra);
  const std::string met = Met(r);
  s +=
      absl::StrFormat(",\"target\":\"%s\",\"met\":%s", Target(r),
                      met.empty() ? "null" : (met == "yes" ? "true" : "false"));
  std::string err = r.recmap.error;
  for (const Side* side : {&r.base, &r.raw, &r.peer})
    if (err.empty()) err = side->m.error;
  if (!err.empty()) {
    for (char& c : err)
      if (c == '"' || c == '\\') c = '\'';
    s += absl::StrFormat(",\"error\":\"%s\"", err);
  }
  return s + "}";
}

std::string Mops(const Measure& m) {
  if (!m.ok) return "FAIL";
  return absl::StrFormat("%.2f", Ops(m) / 1e6);
}

// "3.19x [2.9-3.4]": the median per-round ratio and its range.
std::string RatioText(const Row& r, const Side& s, bool percent) {
  if (!s.has()) return "-";
  auto f = [&](double x) {
    return percent ? absl::StrFormat("%.0f%%", x * 100)
                   : absl::StrFormat("%.2fx", x);
  };
  std::string t = f(RatioOf(r.recmap, s));
  if (s.ratio.has && s.ratio.min != s.ratio.max) {
    t += percent ? absl::StrFormat(" [%.0f-%.0f]", s.ratio.min * 100,
                                   s.ratio.max * 100)
                 : absl::StrFormat(" [%.2f-%.2f]", s.ratio.min, s.ratio.max);
  }
  return t;
}

// The sustained row's figures in full, after the table.
void PrintSustained(FILE* out, const Row& r) {
  absl::FPrintF(out, "\n%s (one round, %s):\n", r.workload, r.what);
  auto line = [&](const std::string& name, const Measure& m) {
    if (!m.ok) {
      absl::FPrintF(out, "  %-14s FAIL %s\n", name, m.error);
      return;
    }
    absl::FPrintF(out,
                  "  %-14s steady %6.2f M/s %6.1f MB/s  worst 1 s %6.2f M/s  "
                  "average %6.2f M/s over %5.1f s  flush %5.2f s  %5.1f GB"
                  "  %4.0f ns CPU/rec\n",
                  name, Ops(m) / 1e6, MBps(m), m.worst_ops_per_sec / 1e6,
                  m.OpsPerSec() / 1e6, m.seconds, m.flush_seconds,
                  m.bytes / 1e9, m.CpuNsPerOp());
  };
  line("recmap", r.recmap);
  for (const Side* s : {&r.base})
    if (s->has()) line(s->name, s->m);
  for (const Side* s : {&r.raw, &r.peer}) {
    if (!s->has()) continue;
    if (!s->m.ok) {
      absl::FPrintF(out, "  %-14s FAIL %s\n", s->name, s->m.error);
      continue;
    }
    absl::FPrintF(
        out, "  %-14s %6.1f MB/s (%.1f GB in %.1f s); recmap %.0f%% of it\n",
        s->name, s->m.bytes / s->m.seconds / 1e6, s->m.bytes / 1e9,
        s->m.seconds, RatioOf(r.recmap, *s) * 100);
  }
}

void PrintTable(FILE* out, const std::vector<Row>& rows) {
  absl::FPrintF(out,
                "%-20s %8s %7s %8s %-19s %8s %-15s %7s %-19s %8s  %-24s %s\n",
                "workload", "recmap", "ns CPU", "baseline", "ratio [min-max]",
                "raw", "of raw", "bip", "x bip", "rss B/r", "target", "met");
  absl::FPrintF(out, "%-20s %8s %7s %8s %-19s %8s %-15s %7s\n", "", "M/s",
                "/rec", "M/s", "", "M/s", "", "M/s");
  for (const Row& r : rows) {
    std::string rec = Mops(r.recmap);
    if (r.max_seconds > 0 && r.recmap.ok)
      rec = absl::StrFormat("%.0f ms", r.recmap.seconds * 1000);
    const std::string cpu = r.recmap.cpu_seconds > 0 && r.max_seconds == 0
                                ? absl::StrFormat("%.0f", r.recmap.CpuNsPerOp())
                                : "-";
    std::string rss =
        r.records
            ? absl::StrFormat("%.0f", double(r.recmap.peak_rss) / r.records)
            : "-";
    std::string target = Target(r);
    if (!r.extra_name.empty())
      target +=
          absl::EndsWith(r.extra_name, "seconds")
              ? absl::StrFormat(" [close %.1f ms]", r.recmap.extra * 1e3)
              : absl::StrFormat(" [%s=%.1f]", r.extra_name, r.recmap.extra);
    absl::FPrintF(
        out, "%-20s %8s %7s %8s %-19s %8s %-15s %7s %-19s %8s  %-24s %s\n",
        r.workload, rec, cpu, r.base.has() ? Mops(r.base.m) : "-",
        RatioText(r, r.base, false), r.raw.has() ? Mops(r.raw.m) : "-",
        RatioText(r, r.raw, true), r.peer.has() ? Mops(r.peer.m) : "-",
        RatioText(r, r.peer, false), rss, target, Met(r));
    if (!r.recmap.error.empty())
      absl::FPrintF(out, "  recmap error: %s\n", r.recmap.error);
    for (const Side* s : {&r.base, &r.raw, &r.peer})
      if (!s->m.error.empty())
        absl::FPrintF(out, "  %s error: %s\n", s->name, s->m.error);
  }
}

using Workload = std::function<Measure(const std::string&)>;

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
                  Mops(r.recmap), r.base.has() ? Mops(r.base.m) : "-", Met(r));
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

  // Runs the engines of one row interleaved -- engine 0, 1, 2, then 0, 1,
  // 2 again -- for c_.repeat rounds, each run in a child process of its own
  // with a fresh scratch subdirectory `name` (removed after it; none when
  // `name` is empty). Throughput on a shared VM swings by up to 2x between
  // runs a minute apart; runs seconds apart see the same machine, so the
  // per-round ratios are steadier than the ratio of two medians. Fills
  // each engine's median run and, for engines 1.., the spread of engine
  // 0's per-round ratio to it. An engine whose run fails keeps that failed
  // run and is not run again.
  void Interleaved(const std::string& name, const std::vector<Workload>& fns,
                   Measure* first, const std::vector<Side*>& others) {
    const size_t k = fns.size();
    std::vector<std::vector<Measure>> runs(k);
    std::vector<Measure> failed(k);
    for (int round = 0; round < c_.repeat; ++round) {
      for (size_t e = 0; e < k; ++e) {
        if (!failed[e].error.empty()) continue;
        const std::string d = name.empty() ? std::string() : Sub(name);
        Measure m = RunInChild([&] { return fns[e](d); });
        if (!d.empty()) RemovePath(d);
        if (!m.ok) {
          if (m.error.empty()) m.error = "failed";
          failed[e] = m;
          continue;
        }
        runs[e].push_back(std::move(m));
      }
    }
    auto median = [&](size_t e) {
      if (!failed[e].error.empty()) return failed[e];
      std::vector<Measure> v = runs[e];
      std::sort(v.begin(), v.end(), [](const Measure& a, const Measure& b) {
        return Ops(a) < Ops(b);
      });
      return v[v.size() / 2];
    };
    *first = median(0);
    for (size_t e = 1; e < k; ++e) {
      Side* s = others[e - 1];
      s->m = median(e);
      if (!failed[0].error.empty() || !failed[e].error.empty()) continue;
      std::vector<double> ratios;
      for (size_t i = 0; i < runs[0].size() && i < runs[e].size(); ++i) {
        const double b = Ops(runs[e][i]);
        if (b > 0) ratios.push_back(Ops(runs[0][i]) / b);
      }
      if (ratios.empty()) continue;
      std::sort(ratios.begin(), ratios.end());
      s->ratio = {true, ratios[ratios.size() / 2], ratios.front(),
                  ratios.back()};
    }
  }

  void Append(const std::string& name, uint64_t n, size_t len, double ratio,
              double raw, bool with_peer) {
    if (!Want(name)) return;
    Row r;
    r.workload = name;
    r.what = absl::StrFormat("append %d-byte values, 1 writer", len);
    r.records = n;
    r.base.name = "lmdb";
    r.raw.name = "raw_fresh";
    std::vector<Workload> fns = {
        [&](const std::string& d) { return RecmapAppend(d, n, len); },
        [&](const std::string& d) {
          return LmdbAppend(d, n, len, c_.lmdb_txn);
        },
        [&](const std::string& d) { return RawFreshAppend(d, n, len); }};
    std::vector<Side*> sides = {&r.base, &r.raw};
    if (with_peer) {
      r.peer.name = "bip";
      fns.push_back([&](const std::string& d) { return BipAppend(d, n, len); });
      sides.push_back(&r.peer);
    }
    Interleaved(name, fns, &r.recmap, sides);
    r.min_ratio = ratio;
    r.min_raw = raw;
    Emit(std::move(r));
  }

  // What the persisted index costs a writer: appends with it (the default)
  // against the same appends with Options::persist_index off, and the
  // close that follows each (recmap's extra).
  void IndexCost(const std::string& name, uint64_t n) {
    if (!Want(name)) return;
    Row r;
    r.workload = name;
    r.what = absl::StrFormat(
        "append 100-byte values then close, index on / off (%d records)", n);
    r.records = n;
    r.base.name = "no_index";
    Interleaved(name,
                {[&](const std::string& d) {
                   return RecmapAppendClose(d, n, 100, true);
                 },
                 [&](const std::string& d) {
                   return RecmapAppendClose(d, n, 100, false);
                 }},
                &r.recmap, {&r.base});
    r.min_ratio = 0.90;
    r.extra_name = "close_seconds";
    r.max_extra = 0.05;
    Emit(std::move(r));
  }

  // The physical limit itself: raw_fresh against the same loop into pages
  // populated before the clock (what page faults cost it).
  void RawFresh(uint64_t n) {
    if (!Want("raw_fresh")) return;
    Row r;
    r.workload = "raw_fresh";
    r.what =
        "the physical limit: 100-byte records + XXH3 into fresh pages, a "
        "helper populating ahead; baseline: pages populated before timing";
    r.records = n;
    r.base.name = "raw_populated";
    Interleaved(
        "raw_fresh",
        {[&](const std::string& d) { return RawFreshAppend(d, n, 100); },
         [&](const std::string& d) { return RawAppend(d, n, 100); }},
        &r.recmap, {&r.base});
    Emit(std::move(r));
  }

  void RandomPut() {
    if (!Want("random_put")) return;
    Row r;
    r.workload = "random_put";
    r.what = "put 100-byte values, ids shuffled";
    r.records = c_.records;
    r.base.name = "lmdb";
    Interleaved("random_put",
                {[&](const std::string& d) {
                   return RecmapRandomPut(d, c_.records, 100);
                 },
                 [&](const std::string& d) {
                   return LmdbRandomPut(d, c_.records, 100, c_.lmdb_txn);
                 }},
                &r.recmap, {&r.base});
    Emit(std::move(r));
  }

  // Random get and scan read one store of each engine, built untimed.
  void Reads() {
    if (!Want("random_get") && !Want("random_multiget") && !Want("scan"))
      return;
    const uint64_t n = c_.records;
    std::string d = Sub("reads");
    const std::string rpath = d + "/reads.rmap", lpath = d + "/lmdb",
                      bpath = d + "/bip.bin";
    Measure build = RunInChild([&] {
      Measure m;
      m.ok = RecmapBuild(rpath, n, 100, &m.error);
      if (m.ok) m.ok = LmdbBuild(lpath, n, 100, &m.error);
      if (m.ok) m.ok = BipBuild(bpath, n, 100, &m.error);
      return m;
    });
    // One row over the prebuilt stores: recmap, LMDB and, when `bip` is
    // given, Boost.Interprocess, interleaved.
    auto read_row = [&](const char* name, const char* what, double min_ratio,
                        const std::function<Measure()>& recmap,
                        const std::function<Measure()>& lmdb,
                        const std::function<Measure()>& bip) {
      Row r;
      r.workload = name;
      r.what = what;
      r.records = n;
      r.base.name = "lmdb";
      r.min_ratio = min_ratio;
      if (!build.ok) {
        r.recmap.error = build.error;
        return r;
      }
      std::vector<Workload> fns = {[&](auto&) { return recmap(); },
                                   [&](auto&) { return lmdb(); }};
      std::vector<Side*> sides = {&r.base};
      if (bip) {
        r.peer.name = "bip";
        fns.push_back([&](auto&) { return bip(); });
        sides.push_back(&r.peer);
      }
      Interleaved("", fns, &r.recmap, sides);
      return r;
    };
    if (Want("random_get")) {
      Row r = read_row(
          "random_get", "get 100-byte values by shuffled id", 3,
          [&] { return RecmapRandomGet(rpath, n); },
          [&] { return LmdbRandomGet(lpath, n); },
          [&] { return BipRandomGet(bpath, n); });
      r.extra_name = "index_bytes_per_record";
      Emit(std::move(r));
      if (build.ok) {
        Row m;
        m.workload = "index_memory";
        m.what = "offset index heap bytes per record";
        m.records = n;
        m.recmap = rows_.back().recmap;
        m.recmap.seconds = 0;
        m.recmap.cpu_seconds = 0;
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
          [&] { return LmdbRandomGet(lpath, n); }, nullptr));
    }
    if (Want("scan")) {
      Emit(read_row(
          "scan", "full scan, recmap checksums verified", 1.5,
          [&] { return RecmapScan(rpath, n); },
          [&] { return LmdbScan(lpath, n); },
          [&] { return BipScan(bpath, n); }));
    }
    RemovePath(d);
  }

  void Writers() {
    if (!Want("writers_2")) return;
    Row r;
    r.workload = "writers_2";
    r.what = "2 writer processes vs 1, 100-byte appends";
    r.records = c_.records;
    r.base.name = "recmap_1_writer";
    r.peer.name = "bip";
    Interleaved("writers",
                {[&](const std::string& d) {
                   return RecmapWriters(d, c_.records, 100, 2);
                 },
                 [&](const std::string& d) {
                   return RecmapWriters(d, c_.records, 100, 1);
                 },
                 [&](const std::string& d) {
                   return BipWriters(d, c_.records, 100, 2);
                 }},
                &r.recmap, {&r.base, &r.peer});
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
    r.base.name = "lmdb";
    Interleaved("durable",
                {[&](const std::string& d) {
                   return RecmapDurable(d, batches, batch, 100);
                 },
                 [&](const std::string& d) {
                   return LmdbDurable(d, batches, batch, 100);
                 }},
                &r.recmap, {&r.base});
    Emit(std::move(r));
  }

  // Sustained appends, where the disk is the limit: one writer appending
  // 100-byte records for sustained_seconds, well past the kernel's dirty
  // limits, against LMDB doing the same and the disk's sequential write
  // bandwidth measured in the same directory just before. One round (two
  // minutes of appends per round; --repeat does not apply), in the order
  // disk O_DIRECT, disk buffered, recmap, LMDB.
  void Sustained() {
    if (!Want("sustained")) return;
    constexpr uint64_t kRecord = 32 + 104;  // a 100-byte record's footprint
    Row r;
    r.workload = "sustained";
    r.what = absl::StrFormat(
        "append 100-byte values for %g s, 1 writer; raw: the disk, O_DIRECT; "
        "peer: buffered + fdatasync",
        c_.sustained_seconds);
    r.sustained = true;
    r.base.name = "lmdb";
    r.raw.name = "disk_direct";
    r.peer.name = "disk_buffered";
    auto run = [&](const Workload& fn) {
      const std::string d = Sub("sustained");
      Measure m = RunInChild([&] { return fn(d); });
      RemovePath(d);
      // Let the deletion's discards and any writeback settle before the
      // next engine (the filesystem is mounted with discard).
      ::sync();
      if (!m.ok && m.error.empty()) m.error = "failed";
      return m;
    };
    r.raw.m = run([&](const std::string& d) {
      return DiskDirectWrite(d, c_.disk_bytes, kRecord);
    });
    r.peer.m = run([&](const std::string& d) {
      return DiskBufferedWrite(d, c_.disk_bytes, kRecord);
    });
    r.recmap = run([&](const std::string& d) {
      return RecmapSustained(d, c_.sustained_seconds, 100);
    });
    r.base.m = run([&](const std::string& d) {
      return LmdbSustained(d, c_.sustained_seconds, 100);
    });
    r.records = r.recmap.ops;
    r.min_raw = 0.9;
    Emit(std::move(r));
  }

  void Compaction() {
    if (!Want("compact")) return;
    Row r;
    r.workload = "compact";
    r.what = "compact a store with half its records superseded";
    r.records = c_.records;
    r.base.name = "lmdb";
    Interleaved(
        "compact",
        {[&](const std::string& d) {
           return RecmapCompact(d, c_.records, 100);
         },
         [&](const std::string& d) { return LmdbCompact(d, c_.records, 100); }},
        &r.recmap, {&r.base});
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
    } else if (a == "--sustained-seconds") {
      c.sustained_seconds = std::stod(next());
    } else if (a == "--disk-bytes") {
      c.disk_bytes = std::stoull(next());
    } else if (a == "--only") {
      for (auto w : absl::StrSplit(next(), ',')) c.only.insert(std::string(w));
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "usage: recmap_bench [--json] [--dir DIR] [--records N]\n"
          "  [--big-records N] [--open-records N] [--repeat N]\n"
          "  [--only w1,w2,...] [--sustained-seconds S] [--disk-bytes N]\n"
          "workloads: append_16 append_100 raw_fresh append_index\n"
          "  append_index_10m append_4k random_put\n"
          "  random_get"
          "  random_multiget scan writers_2 durable_batch compact open\n"
          "  sustained\n");
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
  run.Append("append_100", c.records, 100, 3, 0.80, /*with_peer=*/true);
  run.RawFresh(c.records);
  run.IndexCost("append_index", c.records);
  run.IndexCost("append_index_10m", c.open_records);
  run.Append("append_16", c.records, 16, 5, 0, false);
  run.Append("append_4k", c.big_records, 4096, 2, 0, false);
  run.RandomPut();
  run.Reads();
  run.Writers();
  run.Durable();
  run.Compaction();
  run.Opens();
  run.Sustained();
  RemoveScratch(scratch);
  FILE* out = c.json ? stderr : stdout;
  absl::FPrintF(out, "\n");
  PrintTable(out, run.rows());
  for (const Row& r : run.rows())
    if (r.sustained) PrintSustained(out, r);
  absl::FPrintF(out, "\ntotal %.1f s\n", Now() - t0);
  bool all_ok = true;
  for (const Row& r : run.rows())
    for (const Side* side : {&r.base, &r.raw, &r.peer})
      all_ok = all_ok && r.recmap.ok && (!side->has() || side->m.ok);
  return all_ok ? 0 : 1;
}

}  // namespace
}  // namespace recmap::bench

int main(int argc, char** argv) { return recmap::bench::Main(argc, argv); }
