// The usage example shown in README.md (tests/readme_test.cc checks that
// the README quotes this file verbatim, and runs it).
#include <cstdio>
#include <string>

#include "recmap/store.h"

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "example.rmap";
  recmap::Options options;
  options.create_if_missing = true;
  absl::StatusOr<std::unique_ptr<recmap::Store>> store =
      recmap::Store::Open(path, options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  recmap::Store& db = **store;

  if (absl::Status s = db.Put(42, "hello, recmap"); !s.ok()) return 1;
  absl::StatusOr<uint64_t> id = db.Append("an appended record");
  if (!id.ok()) return 1;
  if (absl::Status s = db.Sync(); !s.ok()) return 1;  // survive power loss

  // A zero-copy view into the mapping, valid while `db` is open.
  absl::StatusOr<std::string_view> value = db.Get(42);
  if (value.ok()) {
    std::printf("42 -> %.*s\n", static_cast<int>(value->size()), value->data());
  }
  if (absl::Status s = db.Delete(42); !s.ok()) return 1;
  std::printf("after delete: %s\n", db.Get(42).status().ToString().c_str());

  // Every live record, oldest first.
  absl::Status s = db.ForEachLive([](const recmap::RecordView& r) {
    std::printf("id %llu seq %llu: %.*s\n",
                static_cast<unsigned long long>(r.id),
                static_cast<unsigned long long>(r.sequence),
                static_cast<int>(r.value.size()), r.value.data());
    return true;  // keep going
  });
  return s.ok() ? 0 : 1;
}
