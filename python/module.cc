// recmap._recmap: the Python binding of recmap's public C++ API
// (store/include/recmap/, and store/verify.h for verify(): nothing here
// reaches the internals).
//
// Invariants
// - Every value handed to Python points into the store's mapping: a
//   memoryview whose exporter is a `_Span` object, which holds a reference
//   to the Store object (so the mapping outlives the view) and counts its
//   buffer exports in the store's Core. Store.close() refuses with
//   BufferError while any export is alive, as mmap.close() does; a _Span of
//   a closed store refuses new exports.
// - The GIL is released only between an InUse guard's construction and
//   destruction, both made with the GIL held, so close() (GIL held) sees
//   every call in flight and refuses with Busy instead of destroying the
//   store under it.
// - A handle is owned by the process that opened it: in a forked child
//   every write raises UsedAfterFork, and its C++ objects are leaked rather
//   than destroyed (their destructors would release the parent's region
//   locks, which the child shares through the inherited file descriptions,
//   and join helper threads that do not exist in the child).
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <signal.h>
#include <structmember.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "recmap/compaction.h"
#include "recmap/options.h"
#include "recmap/record.h"
#include "recmap/recovery.h"
#include "recmap/store.h"
#include "recmap/tailer.h"
#include "store_peer.h"  // the tailer's counters, through recmap_internal
#include "verify.h"      // store/verify.h, through recmap_internal

namespace recmap::python {
namespace {

namespace pyb = pybind11;

// Values at least this large are written with the GIL released.
constexpr size_t kReleaseGilBytes = 64 * 1024;
// get_many releases the GIL for batches at least this large.
constexpr size_t kReleaseGilBatch = 64;
// A waiting tail wakes this often to check for signals (Ctrl-C).
constexpr auto kTailSlice = std::chrono::milliseconds(50);

// ---------------------------------------------------------------- errors

struct Errors {
  PyObject* error = nullptr;
  PyObject* not_found = nullptr;
  PyObject* already_exists = nullptr;
  PyObject* invalid_argument = nullptr;
  PyObject* failed_precondition = nullptr;
  PyObject* read_only = nullptr;
  PyObject* busy = nullptr;
  PyObject* used_after_fork = nullptr;
  PyObject* closed = nullptr;
  PyObject* permission_denied = nullptr;
  PyObject* data_loss = nullptr;
  PyObject* resource_exhausted = nullptr;
  PyObject* internal = nullptr;
};
Errors g_err;

[[noreturn]] void Raise(PyObject* type, const std::string& msg) {
  PyErr_SetString(type, msg.c_str());
  throw pyb::error_already_set();
}

PyObject* ErrorFor(const absl::Status& s) {
  std::string m(s.message());
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return g_err.not_found;
    case absl::StatusCode::kAlreadyExists:
      return g_err.already_exists;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return g_err.invalid_argument;
    case absl::StatusCode::kFailedPrecondition:
      if (m.find("read-only") != m.npos || m.find("read only") != m.npos) {
        return g_err.read_only;
      }
      if (m.find("open for writing") != m.npos ||
          m.find("compaction") != m.npos) {
        return g_err.busy;
      }
      return g_err.failed_precondition;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kAborted:
      return g_err.busy;
    case absl::StatusCode::kPermissionDenied:
      return g_err.permission_denied;
    case absl::StatusCode::kDataLoss:
      return g_err.data_loss;
    case absl::StatusCode::kResourceExhausted:
      return g_err.resource_exhausted;
    default:
      return g_err.internal;
  }
}

[[noreturn]] void ThrowStatus(const absl::Status& s) {
  Raise(ErrorFor(s), std::string(s.message()));
}

void Check(const absl::Status& s) {
  if (!s.ok()) ThrowStatus(s);
}

// ------------------------------------------------------------ the store

// This process's id, cached: glibc does not cache getpid(), and a system
// call per append (the fork check of every write) cost a fifth of an
// append's time. A pthread_atfork child handler (registered at import)
// refreshes it in every fork child, including os.fork() and
// multiprocessing's.
pid_t g_pid = 0;
// The main thread's id (where Python runs signal handlers): taken at
// import from threading.main_thread(), and in a fork child (whose only
// thread, the one that forked, is Python's main thread from then on).
unsigned long g_main_thread = 0;
void RefreshPidInChild() {
  g_pid = getpid();
  g_main_thread = PyThread_get_thread_ident();
}
pid_t CurrentPid() { return g_pid; }

// Something that must be destroyed before the C++ Store (a Writer or a
// Tailer). Store.close() invalidates every live child first.
class Child {
 public:
  virtual ~Child() = default;
  virtual void Invalidate() = 0;
};

struct Core {
  std::unique_ptr<recmap::Store> store;
  std::string path;
  Options options;
  pid_t pid = 0;           // the process that opened the handle
  Py_ssize_t exports = 0;  // live buffer exports of views into the mapping
  int busy = 0;            // calls running with the GIL released
  std::unordered_set<Child*> children;
  // A log scan's record buffer, kept between scans so that each scan does
  // not grow (and page-fault) a fresh one region after region.
  std::vector<RecordView> spare_batch;

  bool forked() const { return CurrentPid() != pid; }

  recmap::Store& Use() {
    if (!store) Raise(g_err.closed, "recmap store is closed: " + path);
    return *store;
  }
  recmap::Store& UseForWrite() {
    recmap::Store& s = Use();
    if (forked()) {
      Raise(g_err.used_after_fork,
            "recmap store " + path + " was opened in process " +
                std::to_string(pid) + " and cannot be written from process " +
                std::to_string(CurrentPid()) +
                " (a fork child): open the store again in the child");
    }
    if (options.read_only) {
      Raise(g_err.read_only, "recmap store " + path + " is open read-only");
    }
    return s;
  }
  // Destroys the C++ store (or leaks it in a fork child). GIL held.
  void Release() {
    std::vector<Child*> kids(children.begin(), children.end());
    for (Child* c : kids) c->Invalidate();
    children.clear();
    if (!store) return;
    if (forked()) {
      (void)store.release();  // see the invariants at the top
      return;
    }
    std::unique_ptr<recmap::Store> s = std::move(store);
    pyb::gil_scoped_release nogil;
    s.reset();  // may Sync and write the index file
  }
};

// Marks a call in flight; construct and destroy with the GIL held.
class InUse {
 public:
  explicit InUse(Core& c) : c_(c) { ++c_.busy; }
  ~InUse() { --c_.busy; }
  InUse(const InUse&) = delete;
  InUse& operator=(const InUse&) = delete;

 private:
  Core& c_;
};

// Marks a Writer or Tailer (not thread-safe in C++) in use by one thread;
// a second thread arriving while the first waits without the GIL gets Busy.
class Exclusive {
 public:
  Exclusive(bool& flag, const char* what) : flag_(flag) {
    if (flag_) {
      Raise(g_err.busy, std::string("this recmap ") + what +
                            " is in use by another thread (use one per "
                            "thread)");
    }
    flag_ = true;
  }
  ~Exclusive() { flag_ = false; }
  Exclusive(const Exclusive&) = delete;
  Exclusive& operator=(const Exclusive&) = delete;

 private:
  bool& flag_;
};

// ---------------------------------------------------- _Span (exporter)

struct SpanObject {
  PyObject_HEAD PyObject* owner;  // the Store object (keeps Core alive)
  Core* core;
  const char* data;
  Py_ssize_t size;
};

int SpanGetBuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* s = reinterpret_cast<SpanObject*>(self);
  if (!s->core->store) {
    view->obj = nullptr;
    PyErr_SetString(g_err.closed, "recmap store is closed");
    return -1;
  }
  if (PyBuffer_FillInfo(view, self, const_cast<char*>(s->data), s->size,
                        /*readonly=*/1, flags) < 0) {
    return -1;
  }
  ++s->core->exports;
  return 0;
}

void SpanReleaseBuffer(PyObject* self, Py_buffer*) {
  --reinterpret_cast<SpanObject*>(self)->core->exports;
}

void SpanDealloc(PyObject* self) {
  Py_XDECREF(reinterpret_cast<SpanObject*>(self)->owner);
  Py_TYPE(self)->tp_free(self);
}

PyBufferProcs g_span_buffer = {SpanGetBuffer, SpanReleaseBuffer};
PyTypeObject g_span_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

void InitSpanType() {
  g_span_type.tp_name = "recmap._Span";
  g_span_type.tp_basicsize = sizeof(SpanObject);
  g_span_type.tp_flags = Py_TPFLAGS_DEFAULT;
  g_span_type.tp_doc =
      "Bytes of one record inside a store's mapping (a memoryview's "
      "exporter; keeps the store open).";
  g_span_type.tp_dealloc = SpanDealloc;
  g_span_type.tp_as_buffer = &g_span_buffer;
  if (PyType_Ready(&g_span_type) < 0) throw pyb::error_already_set();
}

// A new reference to a read-only memoryview of `v` inside `owner`'s mapping.
PyObject* NewView(PyObject* owner, Core* core, std::string_view v) {
  auto* s = PyObject_New(SpanObject, &g_span_type);
  if (s == nullptr) throw pyb::error_already_set();
  Py_INCREF(owner);
  s->owner = owner;
  s->core = core;
  s->data = v.data();
  s->size = static_cast<Py_ssize_t>(v.size());
  PyObject* mv = PyMemoryView_FromObject(reinterpret_cast<PyObject*>(s));
  Py_DECREF(s);
  if (mv == nullptr) throw pyb::error_already_set();
  return mv;
}

// --------------------------------------------------------- Record tuple

PyStructSequence_Field g_record_fields[] = {
    {"id", "the record's id"},
    {"sequence", "its global sequence number (orders all writes)"},
    {"type", "'put' or 'delete'"},
    {"value",
     "its bytes: a read-only memoryview into the mapping (empty for "
     "a delete)"},
    {nullptr, nullptr}};
PyStructSequence_Desc g_record_desc = {
    "recmap.Record",
    "One record of a store: (id, sequence, type, value). A named tuple; "
    "`value` is a zero-copy read-only memoryview.",
    g_record_fields, 4};
PyTypeObject* g_record_type = nullptr;
PyObject* g_type_names[4] = {};  // "zero", "put", "delete", "padding"

// A memoryview of `v`, which lies inside `base` (a memoryview whose
// exporter is a _Span), sharing base's managed buffer: one allocation (the
// memoryview) instead of three (_Span, managed buffer, memoryview) and no
// buffer export per value. The view is set up as CPython's own slicing
// does (memoryobject.c, init_slice/init_len): a 1-D unsigned-byte view with
// its pointer, length and shape moved inside the parent's range. The
// parent's export is released when its last view dies, so close() still
// raises BufferError while any of them is alive.
PyObject* SliceView(PyObject* base, std::string_view v) {
  PyObject* mv = PyMemoryView_FromObject(base);
  if (mv == nullptr) throw pyb::error_already_set();
  Py_buffer& b = reinterpret_cast<PyMemoryViewObject*>(mv)->view;
  if (!v.empty()) b.buf = const_cast<char*>(v.data());
  b.len = static_cast<Py_ssize_t>(v.size());
  b.shape[0] = b.len;
  return mv;
}

// A new reference to a memoryview over [lo, hi) of the mapping: the parent
// of the SliceViews of one scan batch.
PyObject* NewBaseView(PyObject* owner, Core* core,
                      const std::vector<RecordView>& batch) {
  const char* lo = nullptr;
  const char* hi = nullptr;
  for (const RecordView& r : batch) {
    if (r.value.empty()) continue;
    if (lo == nullptr || r.value.data() < lo) lo = r.value.data();
    const char* end = r.value.data() + r.value.size();
    if (hi == nullptr || end > hi) hi = end;
  }
  return NewView(
      owner, core,
      lo == nullptr ? std::string_view() : std::string_view(lo, hi - lo));
}

// A Record of `r`; its value a view of its own (base == nullptr) or a
// SliceView of `base`.
PyObject* NewRecord(PyObject* owner, Core* core, const RecordView& r,
                    PyObject* base = nullptr) {
  PyObject* rec = PyStructSequence_New(g_record_type);
  if (rec == nullptr) throw pyb::error_already_set();
  PyObject* id = PyLong_FromUnsignedLongLong(r.id);
  PyObject* seq = PyLong_FromUnsignedLongLong(r.sequence);
  PyObject* type = g_type_names[static_cast<int>(r.type) & 3];
  Py_INCREF(type);
  PyStructSequence_SET_ITEM(rec, 0, id);
  PyStructSequence_SET_ITEM(rec, 1, seq);
  PyStructSequence_SET_ITEM(rec, 2, type);
  PyObject* value = nullptr;
  try {
    value = base != nullptr ? SliceView(base, r.value)
                            : NewView(owner, core, r.value);
  } catch (...) {
    Py_DECREF(rec);
    throw;
  }
  PyStructSequence_SET_ITEM(rec, 3, value);
  if (id == nullptr || seq == nullptr) {
    Py_DECREF(rec);
    throw pyb::error_already_set();
  }
  return rec;
}

// ---------------------------------------------------- input buffers

// The bytes of any C-contiguous buffer (bytes, bytearray, memoryview, NumPy
// array, mmap...) or the UTF-8 of a str, without copying.
class InBuf {
 public:
  explicit InBuf(pyb::handle h) {
    PyObject* o = h.ptr();
    if (PyBytes_CheckExact(o)) {  // immutable: no buffer export needed
      sv_ = std::string_view(PyBytes_AS_STRING(o),
                             static_cast<size_t>(PyBytes_GET_SIZE(o)));
      return;
    }
    if (PyUnicode_Check(o)) {
      Py_ssize_t n = 0;
      const char* s = PyUnicode_AsUTF8AndSize(o, &n);
      if (s == nullptr) throw pyb::error_already_set();
      sv_ = std::string_view(s, static_cast<size_t>(n));
      return;
    }
    if (PyObject_GetBuffer(o, &buf_, PyBUF_SIMPLE) != 0) {
      throw pyb::error_already_set();
    }
    held_ = true;
    sv_ = std::string_view(static_cast<const char*>(buf_.buf),
                           static_cast<size_t>(buf_.len));
  }
  ~InBuf() {
    if (held_) PyBuffer_Release(&buf_);
  }
  InBuf(const InBuf&) = delete;
  InBuf& operator=(const InBuf&) = delete;
  std::string_view view() const { return sv_; }

 private:
  Py_buffer buf_{};
  bool held_ = false;
  std::string_view sv_;
};

template <typename F>
auto MaybeWithoutGil(size_t bytes, F&& f) {
  if (bytes >= kReleaseGilBytes) {
    pyb::gil_scoped_release nogil;
    return f();
  }
  return f();
}

// Ids as an array.array('Q') (one buffer, not a Python int per record).
PyObject* g_array_type = nullptr;  // array.array

PyObject* NewIdArray(const std::vector<uint64_t>& ids) {
  static_assert(sizeof(unsigned long long) == sizeof(uint64_t));  // NOLINT
  PyObject* a = PyObject_CallFunction(
      g_array_type, "sy#", "Q",
      ids.empty() ? "" : reinterpret_cast<const char*>(ids.data()),
      static_cast<Py_ssize_t>(ids.size() * sizeof(uint64_t)));
  if (a == nullptr) throw pyb::error_already_set();
  return a;
}

// The buffers of up to kManyChunk items of an iterator, held (each item
// referenced, each non-bytes buffer exported) so that their bytes stay put
// while the GIL is released.
constexpr size_t kManyChunk = 1024;

class HeldChunk {
 public:
  HeldChunk() = default;
  ~HeldChunk() { Clear(); }
  HeldChunk(const HeldChunk&) = delete;
  HeldChunk& operator=(const HeldChunk&) = delete;

  // Takes the next items of `it`; false when the iterator was already
  // exhausted. An item that is not a buffer (or the iterator failing) ends
  // the chunk before it, the Python error kept in error() for the caller
  // to raise once the items before it are written.
  bool Fill(PyObject* it) {
    Clear();
    while (items_.size() < kManyChunk) {
      PyObject* o = PyIter_Next(it);
      if (o == nullptr) {
        if (PyErr_Occurred())
          error_ = std::make_unique<pyb::error_already_set>();
        break;
      }
      try {
        items_.emplace_back(o);  // deque: no move, block allocations
      } catch (pyb::error_already_set& e) {
        error_ = std::make_unique<pyb::error_already_set>(std::move(e));
        break;
      }
      bytes_ += items_.back().in.view().size();
    }
    return !items_.empty() || error_ != nullptr;
  }
  // The error that ended the last Fill, if any (thrown by the caller).
  std::unique_ptr<pyb::error_already_set> TakeError() {
    return std::move(error_);
  }
  size_t size() const { return items_.size(); }
  size_t bytes() const { return bytes_; }
  std::string_view operator[](size_t i) const { return items_[i].in.view(); }
  void Clear() {
    items_.clear();
    bytes_ = 0;
  }

 private:
  struct InBufRef {
    explicit InBufRef(PyObject* o)
        : obj(pyb::reinterpret_steal<pyb::object>(o)), in(obj) {}
    pyb::object obj;  // keeps the item alive (steals the reference)
    InBuf in;
  };
  std::deque<InBufRef> items_;
  size_t bytes_ = 0;
  std::unique_ptr<pyb::error_already_set> error_;
};

// Appends every buffer `items` yields through `append(string_view) ->
// StatusOr<uint64_t>`, chunk by chunk, the GIL released over each chunk's
// C++ work (one release per chunk, not per record), and returns the ids
// as an array('Q'). On an error the records before the failing one are
// written (and published); the exception says how many.
template <typename Append>
PyObject* AppendMany(Core& core, pyb::handle items, Append&& append) {
  PyObject* it = PyObject_GetIter(items.ptr());
  if (it == nullptr) throw pyb::error_already_set();
  pyb::object it_ref = pyb::reinterpret_steal<pyb::object>(it);
  std::vector<uint64_t> ids;
  Py_ssize_t hint = PyObject_LengthHint(items.ptr(), 0);
  if (hint < 0) {
    PyErr_Clear();
    hint = 0;
  }
  ids.reserve(static_cast<size_t>(hint));
  HeldChunk chunk;
  while (chunk.Fill(it)) {
    absl::Status st;
    {
      InUse in_use(core);
      pyb::gil_scoped_release nogil;
      for (size_t i = 0; i < chunk.size(); ++i) {
        absl::StatusOr<uint64_t> id = append(chunk[i]);
        if (!id.ok()) {
          st = id.status();
          break;
        }
        ids.push_back(*id);
      }
    }
    if (!st.ok()) {
      Raise(ErrorFor(st), std::string(st.message()) + " (after " +
                              std::to_string(ids.size()) +
                              " records of the batch were appended)");
    }
    if (std::unique_ptr<pyb::error_already_set> e = chunk.TakeError()) {
      throw std::move(*e);  // the items before the bad one are written
    }
  }
  return NewIdArray(ids);
}

// -------------------------------------------------------------- Store

class PyStore {
 public:
  Core core;
  ~PyStore() {
    // No view or child can be alive here: each holds a reference.
    try {
      core.Release();
    } catch (...) {
    }
  }
};

PyStore& StoreOf(pyb::handle self) { return self.cast<PyStore&>(); }

RecoveryMode ParseRecoveryMode(const std::string& m) {
  if (m == "tolerate_torn_tail") return RecoveryMode::kTolerateTornTail;
  if (m == "absolute_consistency") return RecoveryMode::kAbsoluteConsistency;
  if (m == "salvage") return RecoveryMode::kSalvage;
  Raise(g_err.invalid_argument,
        "recovery_mode must be 'tolerate_torn_tail', "
        "'absolute_consistency' or 'salvage', not '" +
            m + "'");
}

recmap::PrefaultMode ParsePrefaultMode(const std::string& m) {
  if (m == "background") return recmap::PrefaultMode::kBackground;
  if (m == "inline") return recmap::PrefaultMode::kInline;
  Raise(g_err.invalid_argument,
        "prefault_mode must be 'background' or 'inline', not '" + m + "'");
}

const char* RecoveryModeKey(RecoveryMode m) {
  switch (m) {
    case RecoveryMode::kTolerateTornTail:
      return "tolerate_torn_tail";
    case RecoveryMode::kAbsoluteConsistency:
      return "absolute_consistency";
    case RecoveryMode::kSalvage:
      return "salvage";
  }
  return "?";
}

// Store::last_recovery() as a dict (recmap/recovery.h names the fields).
pyb::dict RecoveryDict(const RecoveryReport& r) {
  pyb::dict d;
  d["mode"] = RecoveryModeKey(r.mode);
  d["full_recovery"] = r.full_recovery;
  pyb::list regions;
  for (const RegionRecovery& rr : r.regions) {
    pyb::dict g;
    g["region"] = rr.region;
    g["committed_tail"] = rr.committed_tail;
    g["durable_tail"] = rr.durable_tail;
    g["valid_end"] = rr.valid_end;
    g["records"] = rr.records;
    g["stop"] = LogEndName(rr.stop);
    g["stop_offset"] = rr.stop_offset;
    g["skipped_bytes"] = rr.skipped_bytes;
    g["dropped_bytes"] = rr.dropped_bytes();
    g["header_damaged"] = rr.header_damaged;
    g["reformatted"] = rr.reformatted;
    g["changed"] = rr.changed();
    regions.append(g);
  }
  d["regions"] = regions;
  d["trailing_bytes"] = r.trailing_bytes;
  d["cut_region"] = r.cut_region;
  d["unreadable_bytes"] = r.unreadable_bytes;
  d["unreadable"] = r.unreadable;
  d["persisted_index_used"] = r.persisted_index_used;
  d["persisted_index_rejected"] = r.persisted_index_rejected;
  d["scanned_records"] = r.scanned_records;
  return d;
}

Options ParseOptions(bool create, bool read_only, const pyb::kwargs& kw) {
  Options o;
  o.create_if_missing = create;
  o.read_only = read_only;
  for (auto item : kw) {
    std::string k = pyb::str(item.first);
    pyb::handle v = item.second;
    if (k == "exclusive" || k == "error_if_exists") {
      o.error_if_exists = v.cast<bool>();
    } else if (k == "region_size") {
      o.region_size = v.cast<uint64_t>();
    } else if (k == "max_file_size") {
      o.max_file_size = v.cast<uint64_t>();
    } else if (k == "recovery_mode") {
      o.recovery_mode = ParseRecoveryMode(v.cast<std::string>());
    } else if (k == "prefault_bytes") {
      o.prefault_bytes = v.cast<uint64_t>();
    } else if (k == "prefault_mode") {
      o.prefault_mode = ParsePrefaultMode(v.cast<std::string>());
    } else if (k == "persist_index") {
      o.persist_index = v.cast<bool>();
    } else if (k == "persist_index_in_background") {
      o.persist_index_in_background = v.cast<bool>();
    } else if (k == "verify_checksums_on_read") {
      o.verify_checksums_on_read = v.cast<bool>();
    } else {
      PyErr_Format(PyExc_TypeError,
                   "recmap.open() got an unexpected keyword argument '%s'",
                   k.c_str());
      throw pyb::error_already_set();
    }
  }
  return o;
}

void OpenInto(Core& core, const std::string& path, const Options& o) {
  absl::StatusOr<std::unique_ptr<recmap::Store>> s;
  {
    pyb::gil_scoped_release nogil;
    s = recmap::Store::Open(path, o);
  }
  if (!s.ok()) ThrowStatus(s.status());
  core.store = std::move(*s);
  core.path = path;
  core.options = o;
  core.pid = CurrentPid();
}

std::unique_ptr<PyStore> OpenStore(const std::string& path, bool create,
                                   bool read_only, const pyb::kwargs& kw) {
  Options o = ParseOptions(create, read_only, kw);
  auto ps = std::make_unique<PyStore>();
  OpenInto(ps->core, path, o);
  return ps;
}

pyb::object Get(pyb::handle self, uint64_t id) {
  PyStore& ps = StoreOf(self);
  absl::StatusOr<std::string_view> v = ps.core.Use().Get(id);
  if (!v.ok()) {
    if (v.status().code() == absl::StatusCode::kNotFound) {
      PyObject* key = PyLong_FromUnsignedLongLong(id);
      PyErr_SetObject(g_err.not_found, key);
      Py_XDECREF(key);
      throw pyb::error_already_set();
    }
    ThrowStatus(v.status());
  }
  return pyb::reinterpret_steal<pyb::object>(NewView(self.ptr(), &ps.core, *v));
}

void CloseStore(PyStore& ps) {
  Core& c = ps.core;
  if (!c.store) return;
  if (c.exports > 0) {
    Raise(PyExc_BufferError,
          "cannot close recmap store " + c.path + ": " +
              std::to_string(c.exports) +
              " exported view(s) into its mapping still exist (release "
              "them, e.g. memoryview.release() or del)");
  }
  if (c.busy > 0) {
    Raise(g_err.busy, "cannot close recmap store " + c.path +
                          ": another thread is using it");
  }
  c.Release();
}

// ------------------------------------------------------------- Writer

class PyWriter : public Child {
 public:
  PyWriter(pyb::object store, std::unique_ptr<recmap::Writer> w)
      : store_(std::move(store)),
        core_(&StoreOf(store_).core),
        w_(std::move(w)) {
    core_->children.insert(this);
  }
  ~PyWriter() override {
    Invalidate();
    core_->children.erase(this);
  }
  void Invalidate() override {
    if (!w_) return;
    if (core_->forked()) {
      (void)w_.release();
    } else {
      w_.reset();
    }
  }
  recmap::Writer& Use() {
    core_->UseForWrite();
    if (!w_) Raise(g_err.closed, "recmap writer is closed");
    return *w_;
  }
  void Close() {
    Invalidate();
    core_->children.erase(this);
  }
  bool closed() const { return !w_; }
  int64_t region() const { return w_ ? w_->region() : -1; }
  // The store's Core, cached: a pybind11 cast per call (a type-map lookup)
  // was a tenth of an append's time. Valid while store_ is referenced.
  Core& core() { return *core_; }
  bool in_use = false;

 private:
  pyb::object store_;
  Core* core_;
  std::unique_ptr<recmap::Writer> w_;
};

// --------------------------------------------------------------- Tail

// Ctrl-C during a tail wait: while the main thread waits in Tailer::Next,
// SIGINT's handler is ours. It calls Tailer::RequestStop (async-signal-safe:
// an atomic store and a FUTEX_WAKE), so the wait ends at once rather than
// at the end of a slice, then chains to the handler it replaced (Python's,
// which records the signal for PyErr_CheckSignals). The previous handler is
// restored when the wait ends. Other threads never see Python signal
// handlers run, so they wait in slices without it.
std::atomic<Tailer*> g_waiting_tailer{nullptr};
struct sigaction g_prev_sigint;

void OnSigint(int sig, siginfo_t* info, void* ctx) {
  if (Tailer* t = g_waiting_tailer.load(std::memory_order_acquire)) {
    t->RequestStop();
  }
  if ((g_prev_sigint.sa_flags & SA_SIGINFO) != 0) {
    if (g_prev_sigint.sa_sigaction != nullptr) {
      g_prev_sigint.sa_sigaction(sig, info, ctx);
    }
  } else if (g_prev_sigint.sa_handler != SIG_IGN &&
             g_prev_sigint.sa_handler != SIG_DFL) {
    g_prev_sigint.sa_handler(sig);
  }
}

bool OnMainThread() { return PyThread_get_thread_ident() == g_main_thread; }

// Makes SIGINT stop `t`'s wait for the guard's lifetime (main thread only,
// and only when SIGINT has a handler: with SIG_IGN or SIG_DFL the signal
// does nothing or ends the process anyway). Construct and destroy with the
// GIL held.
class SigintStopsTailer {
 public:
  explicit SigintStopsTailer(Tailer* t) {
    if (!OnMainThread()) return;
    struct sigaction cur;
    if (sigaction(SIGINT, nullptr, &cur) != 0) return;
    const bool handled =
        (cur.sa_flags & SA_SIGINFO) != 0 ||
        (cur.sa_handler != SIG_IGN && cur.sa_handler != SIG_DFL);
    if (!handled) return;
    g_prev_sigint = cur;
    g_waiting_tailer.store(t, std::memory_order_release);
    struct sigaction ours = {};
    ours.sa_sigaction = &OnSigint;
    ours.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&ours.sa_mask);
    active_ = sigaction(SIGINT, &ours, nullptr) == 0;
    if (!active_) g_waiting_tailer.store(nullptr, std::memory_order_release);
  }
  ~SigintStopsTailer() {
    if (!active_) return;
    (void)sigaction(SIGINT, &g_prev_sigint, nullptr);
    g_waiting_tailer.store(nullptr, std::memory_order_release);
  }
  SigintStopsTailer(const SigintStopsTailer&) = delete;
  SigintStopsTailer& operator=(const SigintStopsTailer&) = delete;

 private:
  bool active_ = false;
};

class PyTail : public Child {
 public:
  PyTail(pyb::object store, std::unique_ptr<recmap::Tailer> t,
         std::optional<double> timeout, const TailerOptions& options)
      : store_(std::move(store)),
        t_(std::move(t)),
        timeout_(timeout),
        options_(options) {
    StoreOf(store_).core.children.insert(this);
  }
  ~PyTail() override {
    Invalidate();
    StoreOf(store_).core.children.erase(this);
  }
  void Invalidate() override {
    if (!t_) return;
    if (StoreOf(store_).core.forked()) {
      (void)t_.release();
    } else {
      t_.reset();
    }
  }
  void Close() {
    Invalidate();
    StoreOf(store_).core.children.erase(this);
  }

  // The next record, or None when `timeout` seconds (None: forever) pass
  // without one. Waits in slices with the GIL released, checking for
  // signals between them.
  pyb::object Next(std::optional<double> timeout) {
    Core& c = StoreOf(store_).core;
    c.Use();
    if (!t_) Raise(g_err.closed, "recmap tail is closed");
    Exclusive one_thread(in_use_, "tail");
    using Clock = std::chrono::steady_clock;
    const bool forever = !timeout.has_value();
    const auto deadline =
        forever
            ? Clock::time_point::max()
            : Clock::now() +
                  std::chrono::duration_cast<Clock::duration>(
                      std::chrono::duration<double>(std::max(0.0, *timeout)));
    while (true) {
      std::chrono::nanoseconds wait = kTailSlice;
      if (!forever) {
        auto left = deadline - Clock::now();
        if (left < wait) wait = std::max(left, Clock::duration::zero());
      }
      absl::StatusOr<std::optional<RecordView>> got;
      {
        SigintStopsTailer sigint_stops(t_.get());
        InUse in_use(c);
        pyb::gil_scoped_release nogil;
        got = t_->Next(wait);
      }
      if (t_->stop_requested()) {
        // Ctrl-C stopped the wait (only OnSigint stops our tailers), or
        // came just after it ended. A stopped Tailer stays stopped: resume
        // a new one where this one was (past `rec` if it delivered one;
        // views stay valid while the store is open), then let Python's
        // handler run (KeyboardInterrupt).
        ++interruptions_;
        Restart(c);
        if (!got.ok() && got.status().code() == absl::StatusCode::kCancelled) {
          got = std::nullopt;
        }
      }
      if (!got.ok()) ThrowStatus(got.status());
      if (got->has_value()) {
        return pyb::reinterpret_steal<pyb::object>(
            NewRecord(store_.ptr(), &c, **got));
      }
      if (PyErr_CheckSignals() != 0) throw pyb::error_already_set();
      if (!t_) Raise(g_err.closed, "recmap tail is closed");
      if (!forever && Clock::now() >= deadline) return pyb::none();
    }
  }
  pyb::object IterNext() {
    pyb::object r = Next(timeout_);
    if (r.is_none()) throw pyb::stop_iteration();
    return r;
  }
  // Replaces the tailer with one resuming at its next sequence.
  void Restart(Core& c) {
    TailerOptions o = options_;
    o.from_sequence = t_->next_sequence();
    absl::StatusOr<std::unique_ptr<Tailer>> t;
    {
      recmap::Store& s = c.Use();
      InUse in_use(c);
      pyb::gil_scoped_release nogil;
      t = Tailer::Create(s, o);
    }
    if (!t.ok()) ThrowStatus(t.status());
    t_ = std::move(*t);
  }
  uint64_t next_sequence() const { return t_ ? t_->next_sequence() : 0; }
  pyb::dict counters() const {
    pyb::dict d;
    if (!t_) return d;
    TailerCounters k = StorePeer::Counters(*t_);
    d["delivered"] = k.delivered;
    d["futex_waits"] = k.futex_waits;
    d["short_waits"] = k.short_waits;
    d["gaps_skipped"] = k.gaps_skipped;
    d["interruptions"] = interruptions_;
    return d;
  }

 private:
  pyb::object store_;
  std::unique_ptr<recmap::Tailer> t_;
  bool in_use_ = false;
  std::optional<double> timeout_;
  TailerOptions options_;
  uint64_t interruptions_ = 0;  // waits ended by Ctrl-C (RequestStop)
};

// ---------------------------------------------- scans (raw iterator type)

// Appends region `r`'s puts and deletes to `out`, the GIL released; false
// when the store has no region `r` (the end of a log scan). Counting the
// regions up front would take Stats(), which walks the whole index.
bool LoadRegion(Core& core, uint32_t r, std::vector<RecordView>* out) {
  recmap::Store& store = core.Use();
  absl::Status st;
  {
    InUse in_use(core);
    pyb::gil_scoped_release nogil;
    st = store.ForEachInRegion(r, [out](const RecordView& v) {
      if (v.type == RecordType::kPut || v.type == RecordType::kDelete) {
        out->push_back(v);
      }
      return true;
    });
  }
  if (st.code() == absl::StatusCode::kInvalidArgument) return false;
  Check(st);
  return true;
}

// What a scan yields per record.
enum class ScanYield : uint8_t { kRecord, kValue };

struct ScanObject {
  PyObject_HEAD PyObject* owner;
  Core* core;
  std::vector<RecordView>* batch;
  PyObject* base;  // the memoryview the batch's values are sliced from
  size_t pos;
  uint32_t next_region;  // log scans: the next region to load
  uint32_t regions;      // log scans: how many regions; live scans: 0
  ScanYield yield;
};

void ScanDealloc(PyObject* self) {
  auto* s = reinterpret_cast<ScanObject*>(self);
  // s->owner still references the store here, so s->core is alive.
  if (s->batch->capacity() > s->core->spare_batch.capacity()) {
    s->batch->swap(s->core->spare_batch);
  }
  delete s->batch;
  Py_XDECREF(s->base);
  Py_XDECREF(s->owner);
  Py_TYPE(self)->tp_free(self);
}

// Loads the next non-empty region of a log scan; false at the end.
bool LoadNextRegion(ScanObject* s) {
  while (s->next_region < s->regions) {
    s->batch->clear();
    s->pos = 0;
    if (!LoadRegion(*s->core, s->next_region++, s->batch)) {
      s->regions = s->next_region;  // no more regions
      return false;
    }
    if (!s->batch->empty()) return true;
  }
  return false;
}

// Drops the scan's hold on the mapping (its base view's export), so that a
// finished scan does not keep close() from succeeding.
void ScanDropBase(ScanObject* s) { Py_CLEAR(s->base); }

PyObject* ScanNext(PyObject* self) {
  auto* s = reinterpret_cast<ScanObject*>(self);
  try {
    if (!s->core->store) Raise(g_err.closed, "recmap store is closed");
    if (s->pos >= s->batch->size()) {
      ScanDropBase(s);
      if (s->regions == 0 || !LoadNextRegion(s)) return nullptr;  // stop
    }
    if (s->base == nullptr) s->base = NewBaseView(s->owner, s->core, *s->batch);
    const RecordView& r = (*s->batch)[s->pos++];
    PyObject* out = s->yield == ScanYield::kValue
                        ? SliceView(s->base, r.value)
                        : NewRecord(s->owner, s->core, r, s->base);
    if (s->pos >= s->batch->size() && s->next_region >= s->regions) {
      ScanDropBase(s);  // the last record: release the mapping now
    }
    return out;
  } catch (pyb::error_already_set& e) {
    e.restore();
    return nullptr;
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
}

PyTypeObject g_scan_type = {PyVarObject_HEAD_INIT(nullptr, 0)};

void InitScanType() {
  g_scan_type.tp_name = "recmap._Scan";
  g_scan_type.tp_basicsize = sizeof(ScanObject);
  g_scan_type.tp_flags = Py_TPFLAGS_DEFAULT;
  g_scan_type.tp_doc = "An iterator over a store's records.";
  g_scan_type.tp_dealloc = ScanDealloc;
  g_scan_type.tp_iter = PyObject_SelfIter;
  g_scan_type.tp_iternext = ScanNext;
  if (PyType_Ready(&g_scan_type) < 0) throw pyb::error_already_set();
}

pyb::object NewScan(pyb::handle self, bool log,
                    ScanYield yield = ScanYield::kRecord) {
  PyStore& ps = StoreOf(self);
  Core& c = ps.core;
  recmap::Store& store = c.Use();
  auto batch = std::make_unique<std::vector<RecordView>>();
  uint32_t regions = 0;
  if (log) {
    regions = UINT32_MAX;  // until ForEachInRegion says there is no more
    batch->swap(c.spare_batch);
    batch->clear();
  } else {
    absl::Status st;
    {
      InUse in_use(c);
      std::vector<RecordView>* out = batch.get();
      pyb::gil_scoped_release nogil;
      st = store.ForEachLive([out](const RecordView& v) {
        out->push_back(v);
        return true;
      });
    }
    Check(st);
  }
  auto* s = PyObject_New(ScanObject, &g_scan_type);
  if (s == nullptr) throw pyb::error_already_set();
  Py_INCREF(self.ptr());
  s->owner = self.ptr();
  s->core = &c;
  s->batch = batch.release();
  s->pos = 0;
  s->next_region = 0;
  s->regions = regions;
  s->base = nullptr;
  s->yield = yield;
  return pyb::reinterpret_steal<pyb::object>(reinterpret_cast<PyObject*>(s));
}

// -------------------------------------------------- column batches

// An immutable column of `n` items of `T`: a bytes object to fill, and a
// read-only memoryview of it cast to `format` (what Python sees).
template <typename T>
class Column {
 public:
  Column(size_t n, const char* format) {
    bytes_ = pyb::reinterpret_steal<pyb::object>(PyBytes_FromStringAndSize(
        nullptr, static_cast<Py_ssize_t>(n * sizeof(T))));
    if (!bytes_) throw pyb::error_already_set();
    PyObject* mv = PyMemoryView_FromObject(bytes_.ptr());
    if (mv == nullptr) throw pyb::error_already_set();
    view_ = pyb::reinterpret_steal<pyb::object>(mv).attr("cast")(format);
  }
  T* data() { return reinterpret_cast<T*>(PyBytes_AS_STRING(bytes_.ptr())); }
  const T* data() const {
    return reinterpret_cast<const T*>(PyBytes_AS_STRING(bytes_.ptr()));
  }
  const pyb::object& view() const { return view_; }

 private:
  pyb::object bytes_;
  pyb::object view_;
};

// Records of one region as columns: no Python object per record unless
// asked for (batch[i], values()).
class PyBatch {
 public:
  PyBatch(PyObject* store, Core* core, const RecordView* recs, size_t n)
      : n_(n),
        ids_(n, "Q"),
        sequences_(n, "Q"),
        offsets_(n, "Q"),
        lengths_(n, "Q"),
        types_(n, "B") {
    const char* lo = nullptr;
    const char* hi = nullptr;
    for (size_t i = 0; i < n; ++i) {
      std::string_view v = recs[i].value;
      if (v.empty()) continue;
      if (lo == nullptr || v.data() < lo) lo = v.data();
      if (hi == nullptr || v.data() + v.size() > hi) hi = v.data() + v.size();
    }
    data_ = pyb::reinterpret_steal<pyb::object>(NewView(
        store, core,
        lo == nullptr ? std::string_view() : std::string_view(lo, hi - lo)));
    uint64_t* ids = ids_.data();
    uint64_t* seqs = sequences_.data();
    uint64_t* offs = offsets_.data();
    uint64_t* lens = lengths_.data();
    uint8_t* types = types_.data();
    for (size_t i = 0; i < n; ++i) {
      const RecordView& r = recs[i];
      ids[i] = r.id;
      seqs[i] = r.sequence;
      lens[i] = r.value.size();
      offs[i] =
          r.value.empty() ? 0 : static_cast<uint64_t>(r.value.data() - lo);
      types[i] = static_cast<uint8_t>(r.type);
    }
  }
  size_t size() const { return n_; }
  pyb::object Value(Py_ssize_t i) const {
    const Py_ssize_t n = static_cast<Py_ssize_t>(n_);
    if (i < 0) i += n;
    if (i < 0 || i >= n) {
      throw pyb::index_error("RecordBatch index out of range");
    }
    return pyb::reinterpret_steal<pyb::object>(ValueAt(static_cast<size_t>(i)));
  }
  pyb::list Values() const {
    pyb::list out(n_);
    for (size_t i = 0; i < n_; ++i) {
      PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), ValueAt(i));
    }
    return out;
  }
  pyb::object ids() const { return ids_.view(); }
  pyb::object sequences() const { return sequences_.view(); }
  pyb::object offsets() const { return offsets_.view(); }
  pyb::object lengths() const { return lengths_.view(); }
  pyb::object types() const { return types_.view(); }
  pyb::object data() const { return data_; }

 private:
  PyObject* ValueAt(size_t i) const {
    const char* base = static_cast<const char*>(
        reinterpret_cast<PyMemoryViewObject*>(data_.ptr())->view.buf);
    return SliceView(data_.ptr(), std::string_view(base + offsets_.data()[i],
                                                   lengths_.data()[i]));
  }
  size_t n_;
  Column<uint64_t> ids_, sequences_, offsets_, lengths_;
  Column<uint8_t> types_;
  pyb::object data_;
};

// Store.log_batches(): the log region by region, max_records at a time.
class PyBatchScan {
 public:
  PyBatchScan(pyb::object store, size_t max_records)
      : store_(std::move(store)),
        core_(&StoreOf(store_).core),
        max_(max_records) {
    if (max_ == 0) Raise(g_err.invalid_argument, "max_records must be > 0");
    core_->Use();
    recs_.swap(core_->spare_batch);
    recs_.clear();
  }
  ~PyBatchScan() {
    // store_ still references the store here, so core_ is alive.
    if (recs_.capacity() > core_->spare_batch.capacity()) {
      recs_.swap(core_->spare_batch);
    }
  }
  PyBatchScan(const PyBatchScan&) = delete;
  PyBatchScan& operator=(const PyBatchScan&) = delete;
  std::unique_ptr<PyBatch> Next() {
    while (pos_ >= recs_.size()) {
      if (done_) throw pyb::stop_iteration();
      recs_.clear();
      pos_ = 0;
      if (!LoadRegion(*core_, next_region_++, &recs_)) {
        done_ = true;
        throw pyb::stop_iteration();
      }
    }
    core_->Use();
    const size_t n = std::min(max_, recs_.size() - pos_);
    auto b = std::make_unique<PyBatch>(store_.ptr(), core_, &recs_[pos_], n);
    pos_ += n;
    return b;
  }

 private:
  pyb::object store_;
  Core* core_;
  size_t max_;
  bool done_ = false;
  uint32_t next_region_ = 0;
  std::vector<RecordView> recs_;
  size_t pos_ = 0;
};

// ------------------------------------------------------------- helpers

pyb::dict StatsDict(const StoreStats& s) {
  pyb::dict d;
  d["file_size"] = s.file_size;
  d["region_size"] = s.region_size;
  d["regions"] = s.regions;
  d["records"] = s.records;
  d["live_records"] = s.live_records;
  d["tombstones"] = s.tombstones;
  d["payload_bytes"] = s.payload_bytes;
  d["live_payload_bytes"] = s.live_payload_bytes;
  d["next_sequence"] = s.next_sequence;
  d["index_memory_bytes"] = s.index_memory_bytes;
  pyb::list regions;
  for (const RegionStats& r : s.region_stats) {
    pyb::dict e;
    e["index"] = r.index;
    e["epoch"] = r.epoch;
    e["file_offset"] = r.file_offset;
    e["committed_tail"] = r.committed_tail;
    e["durable_tail"] =
        r.durable_tail_valid ? pyb::cast(r.durable_tail) : pyb::none();
    e["sealed"] = r.sealed;
    e["formatted"] = r.formatted;
    e["owner_pid"] = r.owner_pid;
    e["owner_alive"] = r.owner_alive;
    e["records"] = r.records;
    e["fill_bytes"] = r.fill_bytes;
    e["capacity_bytes"] = r.capacity_bytes;
    regions.append(e);
  }
  d["region_stats"] = regions;
  return d;
}

pyb::dict CompactionDict(const CompactionResult& r) {
  pyb::dict d;
  d["path"] = r.path;
  d["bytes_before"] = r.bytes_before;
  d["bytes_after"] = r.bytes_after;
  d["records_before"] = r.records_before;
  d["records_kept"] = r.records_kept;
  d["records_dropped"] = r.records_dropped;
  d["payload_bytes"] = r.payload_bytes;
  d["seconds"] = r.seconds;
  return d;
}

pyb::dict RunCompaction(const std::string& path,
                        std::optional<std::string> output, uint64_t region_size,
                        const std::string& mode) {
  CompactionOptions o;
  if (output) o.output = *output;
  o.region_size = region_size;
  o.recovery_mode = ParseRecoveryMode(mode);
  absl::StatusOr<CompactionResult> r;
  {
    pyb::gil_scoped_release nogil;
    r = recmap::Compact(path, o);
  }
  if (!r.ok()) ThrowStatus(r.status());
  return CompactionDict(*r);
}

VerifyReport RunVerify(const std::string& path) {
  absl::StatusOr<VerifyReport> r;
  {
    pyb::gil_scoped_release nogil;
    r = VerifyStore(path);
  }
  if (!r.ok()) ThrowStatus(r.status());
  return std::move(*r);
}

PyObject* NewError(pyb::module_& m, const char* name, const char* doc,
                   std::vector<PyObject*> bases) {
  PyObject* b = PyTuple_New(static_cast<Py_ssize_t>(bases.size()));
  for (size_t i = 0; i < bases.size(); ++i) {
    Py_INCREF(bases[i]);
    PyTuple_SET_ITEM(b, static_cast<Py_ssize_t>(i), bases[i]);
  }
  std::string full = std::string("recmap.") + name;
  PyObject* e = PyErr_NewExceptionWithDoc(full.c_str(), doc, b, nullptr);
  Py_DECREF(b);
  if (e == nullptr) throw pyb::error_already_set();
  m.add_object(name, pyb::handle(e));
  return e;
}

// ------------------------------------- METH_O fast paths (hot calls)
//
// Store.get / __getitem__ and Writer.append are called per record; plain
// CPython methods skip pybind11's generic argument dispatch.

template <typename T>
T* Unwrap(PyObject* self) {
  return reinterpret_cast<pyb::detail::instance*>(self)
      ->get_value_and_holder()
      .value_ptr<T>();
}

template <typename F>
PyObject* Guard(F&& f) {
  try {
    return f();
  } catch (pyb::error_already_set& e) {
    e.restore();
    return nullptr;
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
}

PyObject* FastGet(PyObject* self, PyObject* arg) {
  return Guard([&]() -> PyObject* {
    uint64_t id = PyLong_AsUnsignedLongLong(arg);
    if (id == static_cast<uint64_t>(-1) && PyErr_Occurred()) {
      throw pyb::error_already_set();
    }
    PyStore* ps = Unwrap<PyStore>(self);
    absl::StatusOr<std::string_view> v = ps->core.Use().Get(id);
    if (!v.ok()) {
      if (v.status().code() == absl::StatusCode::kNotFound) {
        PyErr_SetObject(g_err.not_found, arg);
        return nullptr;
      }
      ThrowStatus(v.status());
    }
    return NewView(self, &ps->core, *v);
  });
}

PyObject* FastAppend(PyObject* self, PyObject* arg) {
  return Guard([&]() -> PyObject* {
    PyWriter* w = Unwrap<PyWriter>(self);
    InBuf b(arg);
    recmap::Writer& cw = w->Use();
    Exclusive one_thread(w->in_use, "writer");
    InUse in_use(w->core());
    absl::StatusOr<uint64_t> id =
        MaybeWithoutGil(b.view().size(), [&] { return cw.Append(b.view()); });
    if (!id.ok()) ThrowStatus(id.status());
    return PyLong_FromUnsignedLongLong(*id);
  });
}

PyMethodDef g_get_def = {
    "get", FastGet, METH_O,
    "get(id) -> memoryview\n\nThe latest value of `id` as a read-only "
    "memoryview into the mapping (no copy). Raises NotFound (a KeyError) if "
    "absent or deleted. The view keeps the store from closing."};
PyMethodDef g_getitem_def = {"__getitem__", FastGet, METH_O,
                             "store[id]: as get(id)."};
PyMethodDef g_append_def = {
    "append", FastAppend, METH_O,
    "append(data) -> int\n\nAppends `data` (any buffer or str) under a new "
    "id and returns it."};

void AddFastMethod(pyb::handle cls, PyMethodDef* def) {
  PyObject* d =
      PyDescr_NewMethod(reinterpret_cast<PyTypeObject*>(cls.ptr()), def);
  if (d == nullptr || PyObject_SetAttrString(cls.ptr(), def->ml_name, d) < 0) {
    Py_XDECREF(d);
    throw pyb::error_already_set();
  }
  Py_DECREF(d);
}

}  // namespace
}  // namespace recmap::python

PYBIND11_MODULE(_recmap, m) {
  using namespace recmap;          // NOLINT
  using namespace recmap::python;  // NOLINT
  m.doc() =
      "recmap: a persistent, memory-mapped record store (the C++ extension; "
      "import the package `recmap`).";

  g_err.error = NewError(m, "Error", "Base class of every recmap error.",
                         {PyExc_Exception});
  g_err.not_found =
      NewError(m, "NotFound", "No such id (also a KeyError), or no such file.",
               {g_err.error, PyExc_KeyError});
  g_err.already_exists =
      NewError(m, "AlreadyExists", "open(exclusive=True) on an existing file.",
               {g_err.error, PyExc_FileExistsError});
  g_err.invalid_argument = NewError(
      m, "InvalidArgument",
      "A bad argument: a value larger than a region holds, a bad option "
      "(also a ValueError).",
      {g_err.error, PyExc_ValueError});
  g_err.failed_precondition =
      NewError(m, "FailedPrecondition",
               "The store is not in a state for the call (a newer format "
               "version, a handle whose earlier sync() failed).",
               {g_err.error});
  g_err.read_only =
      NewError(m, "ReadOnly", "A write on a store opened read_only=True.",
               {g_err.failed_precondition});
  g_err.busy = NewError(m, "Busy",
                        "Someone else holds what the call needs: compaction "
                        "while another handle writes, close() while another "
                        "thread uses the store.",
                        {g_err.failed_precondition});
  g_err.used_after_fork = NewError(
      m, "UsedAfterFork",
      "A handle opened by the parent was written from a fork child: open "
      "the store again in the child.",
      {g_err.failed_precondition});
  g_err.closed = NewError(m, "Closed",
                          "The store (or writer, or tail) is closed (also a "
                          "ValueError, as for a closed file).",
                          {g_err.error, PyExc_ValueError});
  g_err.permission_denied =
      NewError(m, "PermissionDenied",
               "The file cannot be opened with the requested access.",
               {g_err.error, PyExc_PermissionError});
  g_err.data_loss = NewError(
      m, "DataLoss", "The file is damaged; the message names the offset.",
      {g_err.error});
  g_err.resource_exhausted = NewError(
      m, "ResourceExhausted",
      "The disk, the file-size limit or the reserved address space is full.",
      {g_err.error});
  g_err.internal = NewError(m, "Internal",
                            "An unexpected system-call failure (errno in the "
                            "message).",
                            {g_err.error});

  RefreshPidInChild();
  g_main_thread = pyb::module_::import("threading")
                      .attr("main_thread")()
                      .attr("ident")
                      .cast<unsigned long>();
  if (pthread_atfork(nullptr, nullptr, &RefreshPidInChild) != 0) {
    throw std::runtime_error("recmap: pthread_atfork failed");
  }
  g_array_type =
      pyb::object(pyb::module_::import("array").attr("array")).release().ptr();
  InitSpanType();
  InitScanType();
  g_record_type = PyStructSequence_NewType(&g_record_desc);
  if (g_record_type == nullptr) throw pyb::error_already_set();
  m.add_object("Record",
               pyb::handle(reinterpret_cast<PyObject*>(g_record_type)));
  const char* names[4] = {"zero", "put", "delete", "padding"};
  for (int i = 0; i < 4; ++i)
    g_type_names[i] = PyUnicode_InternFromString(names[i]);

  auto writer_cls =
      pyb::class_<PyWriter>(m, "Writer",
                            "An exclusive appender with a region of its own "
                            "(Store.writer()). One per thread or process; "
                            "appends share no lock with other writers.")
          .def(
              "append",
              [](PyWriter& w, pyb::handle data) {
                InBuf b(data);
                recmap::Writer& cw = w.Use();
                Exclusive one_thread(w.in_use, "writer");
                InUse in_use(w.core());
                absl::StatusOr<uint64_t> id = MaybeWithoutGil(
                    b.view().size(), [&] { return cw.Append(b.view()); });
                if (!id.ok()) ThrowStatus(id.status());
                return *id;
              },
              pyb::arg("data"),
              "Appends `data` (any buffer or str) under a new id and returns "
              "it.")
          .def(
              "append_many",
              [](PyWriter& w, pyb::handle items) {
                recmap::Writer& cw = w.Use();
                Exclusive one_thread(w.in_use, "writer");
                return pyb::reinterpret_steal<pyb::object>(AppendMany(
                    w.core(), items,
                    [&cw](std::string_view v) { return cw.Append(v); }));
              },
              pyb::arg("items"),
              "Appends each buffer (or str) of the iterable `items` under a "
              "new id, in order, and returns the ids as an array('Q'). Each "
              "record is published as it is written; the GIL is released "
              "once per 1,024 records rather than per call. On an error the "
              "records before the failing one stay written.")
          .def(
              "put",
              [](PyWriter& w, uint64_t id, pyb::handle data) {
                InBuf b(data);
                recmap::Writer& cw = w.Use();
                Exclusive one_thread(w.in_use, "writer");
                InUse in_use(w.core());
                Check(MaybeWithoutGil(b.view().size(),
                                      [&] { return cw.Put(id, b.view()); }));
              },
              pyb::arg("id"), pyb::arg("data"), "Writes `data` for `id`.")
          .def(
              "delete",
              [](PyWriter& w, uint64_t id) {
                recmap::Writer& cw = w.Use();
                Exclusive one_thread(w.in_use, "writer");
                Check(cw.Delete(id));
              },
              pyb::arg("id"), "Writes a tombstone for `id`.")
          .def_property_readonly("region", &PyWriter::region,
                                 "The region this writer appends to (-1 before "
                                 "its first write).")
          .def_property_readonly("closed", &PyWriter::closed)
          .def("close", &PyWriter::Close,
               "Releases the writer's region (also done by `with`).")
          .def("__enter__", [](pyb::object self) { return self; })
          .def("__exit__", [](PyWriter& w, pyb::args) {
            w.Close();
            return false;
          });

  pyb::class_<PyTail>(m, "Tail",
                      "A cursor following the records every writer in every "
                      "process appends, in sequence order (Store.tail()). "
                      "Iterate it, or call next_record(timeout).")
      .def("__iter__", [](pyb::object self) { return self; })
      .def("__next__", &PyTail::IterNext)
      .def("next_record", &PyTail::Next, pyb::arg("timeout") = pyb::none(),
           "The next record, or None if `timeout` seconds (None: forever) "
           "pass without one. Ctrl-C interrupts the wait.")
      .def_property_readonly("next_sequence", &PyTail::next_sequence,
                             "The last delivered sequence + 1: resume a "
                             "tail from here.")
      .def_property_readonly("counters", &PyTail::counters)
      .def("close", &PyTail::Close)
      .def("__enter__", [](pyb::object self) { return self; })
      .def("__exit__", [](PyTail& t, pyb::args) {
        t.Close();
        return false;
      });

  pyb::class_<VerifyIssue>(m, "VerifyIssue",
                           "One problem found by verify(): where it is and "
                           "what it is.")
      .def_readonly("region", &VerifyIssue::region,
                    "The region (-1: not about one region).")
      .def_readonly("file_offset", &VerifyIssue::file_offset,
                    "Where the problem starts in the file.")
      .def_readonly("what", &VerifyIssue::what)
      .def("__repr__", [](const VerifyIssue& i) {
        return "<recmap.VerifyIssue region " + std::to_string(i.region) +
               " offset " + std::to_string(i.file_offset) + ": " + i.what + ">";
      });
  pyb::class_<VerifyReport>(
      m, "VerifyResult",
      "What verify() found: counts, and the damage (`issues`); true when "
      "clean. Torn tails (a writer killed mid-record) are normal after a "
      "crash and are counted, not listed.")
      .def_readonly("regions", &VerifyReport::regions)
      .def_readonly("records", &VerifyReport::records,
                    "Valid records: puts, deletes and padding records.")
      .def_readonly("puts", &VerifyReport::puts)
      .def_readonly("deletes", &VerifyReport::deletes)
      .def_readonly("payload_bytes", &VerifyReport::payload_bytes)
      .def_readonly("indexed_ids", &VerifyReport::indexed_ids,
                    "Ids the index resolves.")
      .def_readonly("torn_tails", &VerifyReport::torn_tails)
      .def_readonly("writers_live", &VerifyReport::writers_live,
                    "Checked beside live writers: the published part only, "
                    "the index not checked.")
      .def_readonly("issues", &VerifyReport::issues)
      .def_property_readonly("clean", &VerifyReport::clean)
      .def("__bool__", &VerifyReport::clean)
      .def("__repr__", [](const VerifyReport& r) {
        return "<recmap.VerifyResult " +
               std::string(r.clean() ? "clean"
                                     : std::to_string(r.issues.size()) +
                                           " problems") +
               ": " + std::to_string(r.regions) + " regions, " +
               std::to_string(r.puts) + " puts, " + std::to_string(r.deletes) +
               " deletes, " + std::to_string(r.indexed_ids) + " ids indexed>";
      });

  pyb::class_<PyBatch>(
      m, "RecordBatch",
      "Up to max_records records of one region (Store.log_batches()), as "
      "columns: ids, sequences, types (read-only memoryviews of format 'Q', "
      "and 'B' with 1 = put, 2 = delete; np.asarray() takes them without a "
      "copy), and each value's offset and length inside `data`, a "
      "read-only memoryview of the mapping (no copy). len(batch) records; "
      "batch[i] and values() give values as memoryviews. The batch keeps the "
      "store from closing while it (or a view of it) is alive.")
      .def_property_readonly("ids", &PyBatch::ids)
      .def_property_readonly("sequences", &PyBatch::sequences)
      .def_property_readonly("types", &PyBatch::types)
      .def_property_readonly("offsets", &PyBatch::offsets)
      .def_property_readonly("lengths", &PyBatch::lengths)
      .def_property_readonly("data", &PyBatch::data)
      .def("__len__", &PyBatch::size)
      .def("__getitem__", &PyBatch::Value)
      .def("values", &PyBatch::Values,
           "Every value of the batch, as a list of read-only memoryviews.");

  pyb::class_<PyBatchScan>(m, "_BatchScan")
      .def("__iter__", [](pyb::object self) { return self; })
      .def("__next__", &PyBatchScan::Next);

  auto store_cls =
      pyb::class_<PyStore>(m, "Store",
                           "An open recmap store (recmap.open()). A context "
                           "manager and a mapping from int ids to read-only "
                           "memoryviews.")
          .def("get", &Get, pyb::arg("id"),
               "The latest value of `id` as a read-only memoryview into the "
               "mapping (no copy). Raises NotFound (a KeyError) if absent or "
               "deleted. The view keeps the store from closing.")
          .def("__getitem__", &Get)
          .def(
              "get_record",
              [](pyb::handle self, uint64_t id) {
                PyStore& ps = StoreOf(self);
                absl::StatusOr<RecordView> r = ps.core.Use().GetRecord(id);
                if (!r.ok()) ThrowStatus(r.status());
                return pyb::reinterpret_steal<pyb::object>(
                    NewRecord(self.ptr(), &ps.core, *r));
              },
              pyb::arg("id"), "The latest record of `id` (a Record).")
          .def(
              "get_many",
              [](pyb::handle self, const std::vector<uint64_t>& ids) {
                PyStore& ps = StoreOf(self);
                recmap::Store& s = ps.core.Use();
                std::vector<absl::StatusOr<std::string_view>> vals;
                if (ids.size() >= kReleaseGilBatch) {
                  InUse in_use(ps.core);
                  pyb::gil_scoped_release nogil;
                  vals = s.MultiGet(ids);
                } else {
                  vals = s.MultiGet(ids);
                }
                pyb::list out(ids.size());
                for (size_t i = 0; i < vals.size(); ++i) {
                  if (vals[i].ok()) {
                    PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i),
                                    NewView(self.ptr(), &ps.core, *vals[i]));
                  } else if (vals[i].status().code() ==
                             absl::StatusCode::kNotFound) {
                    Py_INCREF(Py_None);
                    PyList_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i),
                                    Py_None);
                  } else {
                    ThrowStatus(vals[i].status());
                  }
                }
                return out;
              },
              pyb::arg("ids"),
              "Values of many ids in one batch (lookups overlapped): a list of "
              "memoryviews, None where an id is absent.")
          .def(
              "get_array",
              [](pyb::handle self, uint64_t id, pyb::object dtype,
                 pyb::object shape) {
                pyb::object mv = Get(self, id);
                pyb::object np = pyb::module_::import("numpy");
                pyb::object a = np.attr("frombuffer")(mv, dtype);
                if (!shape.is_none()) a = a.attr("reshape")(shape);
                return a;
              },
              pyb::arg("id"), pyb::arg("dtype") = pyb::str("uint8"),
              pyb::arg("shape") = pyb::none(),
              "The record of `id` as a read-only NumPy array (no copy) of "
              "`dtype`, reshaped to `shape` if given.")
          .def(
              "put",
              [](PyStore& ps, uint64_t id, pyb::handle data) {
                InBuf b(data);
                recmap::Store& s = ps.core.UseForWrite();
                InUse in_use(ps.core);
                Check(MaybeWithoutGil(b.view().size(),
                                      [&] { return s.Put(id, b.view()); }));
              },
              pyb::arg("id"), pyb::arg("data"),
              "Writes `data` (any buffer -- bytes, bytearray, memoryview, "
              "NumPy "
              "array -- or a str, as UTF-8; no copy) for `id`. Published "
              "(visible "
              "to every process, surviving this one's crash) when it returns.")
          .def("__setitem__",
               [](PyStore& ps, uint64_t id, pyb::handle data) {
                 InBuf b(data);
                 recmap::Store& s = ps.core.UseForWrite();
                 InUse in_use(ps.core);
                 Check(MaybeWithoutGil(b.view().size(),
                                       [&] { return s.Put(id, b.view()); }));
               })
          .def(
              "append",
              [](PyStore& ps, pyb::handle data) {
                InBuf b(data);
                recmap::Store& s = ps.core.UseForWrite();
                InUse in_use(ps.core);
                absl::StatusOr<uint64_t> id = MaybeWithoutGil(
                    b.view().size(), [&] { return s.Append(b.view()); });
                if (!id.ok()) ThrowStatus(id.status());
                return *id;
              },
              pyb::arg("data"),
              "Appends `data` under a new id (its sequence number) and returns "
              "the id. For parallel appends from threads use writer().")
          .def(
              "append_many",
              [](PyStore& ps, pyb::handle items) {
                recmap::Store& st = ps.core.UseForWrite();
                return pyb::reinterpret_steal<pyb::object>(AppendMany(
                    ps.core, items,
                    [&st](std::string_view v) { return st.Append(v); }));
              },
              pyb::arg("items"),
              "Appends each buffer (or str) of the iterable `items` under a "
              "new id, in order, and returns the ids as an array('Q') (as "
              "Writer.append_many).")
          .def(
              "delete",
              [](PyStore& ps, uint64_t id) {
                Check(ps.core.UseForWrite().Delete(id));
              },
              pyb::arg("id"),
              "Writes a tombstone for `id` (deleting an absent id is no "
              "error).")
          .def("__delitem__",
               [](PyStore& ps, uint64_t id) {
                 recmap::Store& s = ps.core.UseForWrite();
                 if (!s.Get(id).ok()) {
                   PyObject* key = PyLong_FromUnsignedLongLong(id);
                   PyErr_SetObject(g_err.not_found, key);
                   Py_XDECREF(key);
                   throw pyb::error_already_set();
                 }
                 Check(s.Delete(id));
               })
          .def("__contains__",
               [](PyStore& ps, pyb::handle id) {
                 if (!PyLong_Check(id.ptr())) return false;
                 uint64_t k = PyLong_AsUnsignedLongLong(id.ptr());
                 if (PyErr_Occurred()) {
                   PyErr_Clear();
                   return false;
                 }
                 return ps.core.Use().Get(k).ok();
               })
          .def(
              "__len__",
              [](PyStore& ps) {
                recmap::Store& s = ps.core.Use();
                InUse in_use(ps.core);
                pyb::gil_scoped_release nogil;
                return s.Stats().live_records;
              },
              "The number of live records (ids whose latest record is a put).")
          .def(
              "sync",
              [](PyStore& ps) {
                recmap::Store& s = ps.core.UseForWrite();
                absl::Status st;
                {
                  InUse in_use(ps.core);
                  pyb::gil_scoped_release nogil;
                  st = s.Sync();
                }
                Check(st);
              },
              "Makes every record published so far survive a power loss.")
          .def(
              "refresh",
              [](PyStore& ps) {
                recmap::Store& s = ps.core.Use();
                absl::Status st;
                {
                  InUse in_use(ps.core);
                  pyb::gil_scoped_release nogil;
                  st = s.Refresh();
                }
                Check(st);
              },
              "Brings the index up to date with other processes' writes (get "
              "and the scans do this themselves).")
          .def(
              "writer",
              [](pyb::object self) {
                PyStore& ps = StoreOf(self);
                absl::StatusOr<std::unique_ptr<recmap::Writer>> w =
                    ps.core.UseForWrite().NewWriter();
                if (!w.ok()) ThrowStatus(w.status());
                return std::make_unique<PyWriter>(self, std::move(*w));
              },
              "A Writer with a region of its own, for appends in parallel with "
              "other threads and processes. Use it as a context manager.")
          .def(
              "tail",
              [](pyb::object self, std::optional<uint64_t> from_sequence,
                 std::optional<double> timeout, bool include_deletes) {
                PyStore& ps = StoreOf(self);
                TailerOptions o;
                o.from_sequence = from_sequence.value_or(1);
                o.include_deletes = include_deletes;
                absl::StatusOr<std::unique_ptr<Tailer>> t;
                {
                  recmap::Store& s = ps.core.Use();
                  InUse in_use(ps.core);
                  pyb::gil_scoped_release nogil;
                  t = Tailer::Create(s, o);
                }
                if (!t.ok()) ThrowStatus(t.status());
                return std::make_unique<PyTail>(self, std::move(*t), timeout,
                                                o);
              },
              pyb::arg("from_sequence") = pyb::none(),
              pyb::arg("timeout") = pyb::none(),
              pyb::arg("include_deletes") = true,
              "A Tail: an iterator over every record appended by any process, "
              "in "
              "sequence order, from `from_sequence` (None: the first record; "
              "0: "
              "from now on). Iteration waits for new records and ends after "
              "`timeout` seconds without one (None: never). Ctrl-C interrupts "
              "a wait.")
          .def(
              "records", [](pyb::handle self) { return NewScan(self, false); },
              "An iterator over the live records (the latest put of each id) "
              "in sequence order, as of the call; checksums verified. Until "
              "it is exhausted or dropped it keeps the store from closing "
              "(BufferError), as its records' views do.")
          .def("__iter__",
               [](pyb::handle self) { return NewScan(self, false); })
          .def(
              "log", [](pyb::handle self) { return NewScan(self, true); },
              "An iterator over every put and delete in the log (superseded "
              "versions included), region by region; the cheapest full read. "
              "Until it is exhausted or dropped it keeps the store from "
              "closing (BufferError), as its records' views do.")
          .def(
              "values",
              [](pyb::handle self) {
                return NewScan(self, false, ScanYield::kValue);
              },
              "An iterator over the values of the live records (as "
              "records(), yielding only each value: a read-only memoryview).")
          .def(
              "log_values",
              [](pyb::handle self) {
                return NewScan(self, true, ScanYield::kValue);
              },
              "An iterator over the values of every put and delete in the "
              "log (as log(), yielding only each value: a read-only "
              "memoryview; empty for a delete).")
          .def(
              "log_batches",
              [](pyb::object self, size_t max_records) {
                return std::make_unique<PyBatchScan>(self, max_records);
              },
              pyb::arg("max_records") = 65536,
              "An iterator over the log (as log()) in RecordBatch columns of "
              "up to `max_records` records of one region each: no Python "
              "object per record.")
          .def(
              "stats",
              [](PyStore& ps) {
                recmap::Store& s = ps.core.Use();
                StoreStats st;
                {
                  InUse in_use(ps.core);
                  pyb::gil_scoped_release nogil;
                  st = s.Stats();
                }
                return StatsDict(st);
              },
              "Counts and sizes: records, live records, tombstones, bytes, "
              "regions (a dict).")
          .def(
              "verify",
              [](PyStore& ps) {
                ps.core.Use();
                return RunVerify(ps.core.path);
              },
              "Checks the store's file as `recmap verify` does (every "
              "region header, every record's checksum, the durable and "
              "committed tails, sequence uniqueness, the index) through a "
              "read-only handle of its own, never modifying the file. "
              "Returns a VerifyResult (true when clean); damage is reported "
              "in its `issues`, not raised.")
          .def(
              "compact",
              [](PyStore& ps, uint64_t region_size) {
                Core& c = ps.core;
                c.UseForWrite();
                if (c.exports > 0 || c.busy > 0 || !c.children.empty()) {
                  Raise(g_err.busy,
                        "cannot compact " + c.path +
                            " through a handle with live views, writers or "
                            "tails");
                }
                std::string path = c.path;
                Options o = c.options;
                o.create_if_missing = false;
                o.error_if_exists = false;
                c.Release();
                pyb::dict r;
                try {
                  r = RunCompaction(path, std::nullopt, region_size,
                                    "tolerate_torn_tail");
                } catch (...) {
                  OpenInto(c, path, o);
                  throw;
                }
                OpenInto(c, path, o);
                return r;
              },
              pyb::arg("region_size") = 0,
              "Rewrites the store with only the latest live version of each id "
              "(offline: this handle is closed and reopened around it; Busy if "
              "another handle writes). Returns what it did (a dict).")
          .def(
              "close", [](PyStore& ps) { CloseStore(ps); },
              "Closes the store (its writers and tails too). BufferError while "
              "views into it are alive, as mmap.close().")
          .def_property_readonly("closed",
                                 [](PyStore& ps) { return !ps.core.store; })
          .def_property_readonly("path",
                                 [](PyStore& ps) { return ps.core.path; })
          .def_property_readonly(
              "read_only",
              [](PyStore& ps) { return ps.core.options.read_only; })
          .def_property_readonly(
              "info",
              [](PyStore& ps) {
                const StoreInfo& i = ps.core.Use().info();
                pyb::dict d;
                d["path"] = i.path;
                d["format_version"] = i.format_version;
                d["uuid"] =
                    pyb::bytes(reinterpret_cast<const char*>(i.uuid.data()),
                               i.uuid.size());
                d["region_size"] = i.region_size;
                d["created_unix_nanos"] = i.created_unix_nanos;
                d["read_only"] = i.read_only;
                return d;
              },
              "The store file's identity (a dict).")
          .def_property_readonly(
              "last_recovery",
              [](PyStore& ps) {
                return RecoveryDict(ps.core.Use().last_recovery());
              },
              "What this handle's open found in the log and what its "
              "recovery cut, per region (a dict; regions[i]['dropped_bytes']: "
              "published bytes cut).")
          .def("__enter__", [](pyb::object self) { return self; })
          .def("__exit__",
               [](PyStore& ps, pyb::args) {
                 CloseStore(ps);
                 return false;
               })
          .def("__repr__", [](PyStore& ps) {
            return std::string("<recmap.Store '") + ps.core.path + "'" +
                   (ps.core.store
                        ? (ps.core.options.read_only ? " read-only" : "")
                        : " closed") +
                   ">";
          });

  AddFastMethod(store_cls, &g_get_def);
  AddFastMethod(store_cls, &g_getitem_def);
  AddFastMethod(writer_cls, &g_append_def);
  // help() and reprs name the package, not the extension.
  for (const char* cls : {"Store", "Writer", "Tail", "RecordBatch",
                          "VerifyResult", "VerifyIssue"}) {
    m.attr(cls).attr("__module__") = "recmap";
  }

  m.def("open", &OpenStore, pyb::arg("path"), pyb::arg("create") = false,
        pyb::arg("read_only") = false,
        "Opens the store at `path` (recovering it after a crash), creating "
        "it if `create`. Options as keywords: exclusive, region_size, "
        "max_file_size, recovery_mode ('tolerate_torn_tail', "
        "'absolute_consistency', 'salvage'), prefault_bytes, prefault_mode "
        "('background', 'inline'), persist_index, "
        "persist_index_in_background, verify_checksums_on_read. Returns a "
        "Store (a context manager).");
  m.def("verify", &RunVerify, pyb::arg("path"),
        "Checks the store at `path` without modifying it (as `recmap "
        "verify`); returns a VerifyResult. Raises what open() raises for a "
        "file that is not a store at all.");
  m.def("compact", &RunCompaction, pyb::arg("path"),
        pyb::arg("output") = pyb::none(), pyb::arg("region_size") = 0,
        pyb::arg("recovery_mode") = "tolerate_torn_tail",
        "Compacts the store at `path` offline (no handle may be writing it): "
        "keeps the latest live version of each id, atomically replacing the "
        "file (or writing `output`). Returns what it did (a dict).");
}
