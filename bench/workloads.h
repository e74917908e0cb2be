// The measured sections of each workload, one function per engine. Each
// runs inside a child process (RunInChild), creates its data under `dir`,
// and returns the throughput of the measured section only; setup (building
// a store to read) is never timed.
#ifndef RECMAP_BENCH_WORKLOADS_H_
#define RECMAP_BENCH_WORKLOADS_H_

#include <cstdint>
#include <string>

#include "bench_util.h"

namespace recmap::bench {

// --- recmap
// Appends n values of `len` bytes through one Writer (ids are sequences).
Measure RecmapAppend(const std::string& dir, uint64_t n, size_t len);
// RecmapAppend with Options::persist_index as given, the handle then
// closed: extra = seconds of the close (the writer's and the store's).
Measure RecmapAppendClose(const std::string& dir, uint64_t n, size_t len,
                          bool persist_index);
// Puts ids 1..n in shuffled order.
Measure RecmapRandomPut(const std::string& dir, uint64_t n, size_t len);
// Builds a store of n records at `path` (untimed helper for get/scan).
bool RecmapBuild(const std::string& path, uint64_t n, size_t len,
                 std::string* error);
// Gets every id of the store at `path` in shuffled order, checking each
// value's id stamp. extra = index heap bytes per record (built at open).
Measure RecmapRandomGet(const std::string& path, uint64_t n);
// The same gets through Store::MultiGet, `batch` ids per call.
Measure RecmapRandomMultiGet(const std::string& path, uint64_t n, size_t batch);
// Reads every record in log order through the public scan API, checksums
// verified.
Measure RecmapScan(const std::string& path, uint64_t n);
// `procs` processes append n/procs records each to one store at once.
Measure RecmapWriters(const std::string& dir, uint64_t n, size_t len,
                      int procs);
// `batches` batches of `batch` appends, each followed by Sync().
Measure RecmapDurable(const std::string& dir, uint64_t batches, uint64_t batch,
                      size_t len);
// Appends n records in a child process that then kills itself with SIGKILL
// (no clean close) once its background index writer is idle. Untimed setup
// for the open workloads.
bool RecmapCrashWrite(const std::string& path, uint64_t n, size_t len,
                      std::string* error);
// Times Store::Open of the store at `path` holding `n` records (ids 1..n
// must be readable afterwards: spot-checked). extra = seconds of the clean
// close that follows (it persists the offset index). `use_index` false:
// Options::persist_index off, so the index file is neither read (the whole
// log is scanned) nor written.
Measure RecmapOpen(const std::string& path, uint64_t n, bool use_index = true);

// --- LMDB 0.9 (MDB_NOSYNC|MDB_WRITEMAP, MDB_INTEGERKEY)
// Sequential keys 1..n with MDB_APPEND, one transaction per `txn` records.
Measure LmdbAppend(const std::string& dir, uint64_t n, size_t len,
                   uint64_t txn);
Measure LmdbRandomPut(const std::string& dir, uint64_t n, size_t len,
                      uint64_t txn);
bool LmdbBuild(const std::string& dir, uint64_t n, size_t len,
               std::string* error);
Measure LmdbRandomGet(const std::string& dir, uint64_t n);
// Cursor walk over every record, touching each value.
Measure LmdbScan(const std::string& dir, uint64_t n);
// Transactions of `batch` appends committed with sync on (no MDB_NOSYNC).
// Compaction of a store of n records, the first n/2 ids each written
// twice (half the records superseded): recmap Compact() in place (copy,
// fsync, verify, rename); LMDB mdb_env_copy2(MDB_CP_COMPACT) then fsync of
// the copy. ops = input records; extra = output bytes / input bytes.
Measure RecmapCompact(const std::string& dir, uint64_t n, size_t len);
Measure LmdbCompact(const std::string& dir, uint64_t n, size_t len);
Measure LmdbDurable(const std::string& dir, uint64_t batches, uint64_t batch,
                    size_t len);

// --- sustained appends, where the disk is the limit. One writer appends
// `len`-byte values for `seconds` seconds (a RateSampler ends the run and
// samples the count every 100 ms), then makes them durable. ops and
// seconds: the whole run (the page cache absorbs its first seconds);
// steady_ops_per_sec: its last two thirds; worst_ops_per_sec: the worst
// one-second window; bytes: the file's size; flush_seconds: the final
// Sync / mdb_env_sync. The store is not closed (the child exits): the
// close's cost is the open rows' business, not a sustained writer's.
Measure RecmapSustained(const std::string& dir, double seconds, size_t len);
// LMDB the same way (MDB_NOSYNC | MDB_WRITEMAP, MDB_APPEND, a transaction
// per 100,000 records: no more durability than recmap's appends).
Measure LmdbSustained(const std::string& dir, double seconds, size_t len);
// The disk's sequential write bandwidth in `dir`: `bytes` written in 8 MiB
// pwrites to a new file, O_DIRECT (dd oflag=direct) or through the page
// cache (dd conv=fdatasync), then fdatasync, all timed; the file is
// removed. ops = bytes / `record`: records of that footprint per second.
Measure DiskDirectWrite(const std::string& dir, uint64_t bytes,
                        uint64_t record);
Measure DiskBufferedWrite(const std::string& dir, uint64_t bytes,
                          uint64_t record);

// --- raw mmap: the physical limit. The same record bytes (a 32-byte header
// and the padded value) copied into a file mapping whose pages were
// allocated and populated before timing.
Measure RawAppend(const std::string& dir, uint64_t n, size_t len);
// raw_fresh, the physical limit for an append into a new file: the record
// bytes and an XXH3 of header and value written into freshly fallocated
// pages of a shared file mapping, a helper thread populating 16 MiB ahead
// of the writer with MADV_POPULATE_WRITE (one core writes, one populates).
Measure RawFreshAppend(const std::string& dir, uint64_t n, size_t len);

// --- Boost.Interprocess: the seed's approach done properly in C++. A
// managed_mapped_file holding a log of [id u64][len u64][value, padded]
// records, an interprocess_mutex around each append, and an offset table
// indexed by id for gets. No checksums (the seed has none).
// One process appends ids 1..n.
Measure BipAppend(const std::string& dir, uint64_t n, size_t len);
// `procs` processes append n/procs records each to one file at once.
Measure BipWriters(const std::string& dir, uint64_t n, size_t len, int procs);
// Builds a file of n records at `path` (untimed).
bool BipBuild(const std::string& path, uint64_t n, size_t len,
              std::string* error);
// Gets every id of the file at `path` in shuffled order, checking values.
Measure BipRandomGet(const std::string& path, uint64_t n);
// Walks the log in order, touching every value.
Measure BipScan(const std::string& path, uint64_t n);

}  // namespace recmap::bench

#endif  // RECMAP_BENCH_WORKLOADS_H_
