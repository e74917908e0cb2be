"""recmap: a persistent, memory-mapped record store, from Python.

    import recmap
    with recmap.open("data.rmap", create=True) as store:
        rid = store.append(b"hello")          # any buffer: bytes, numpy, ...
        store.put(42, b"answer")
        view = store.get(42)                  # read-only memoryview, no copy
        for rec in store.tail(timeout=1.0):   # follows every process's writes
            print(rec.id, rec.sequence, rec.type, bytes(rec.value))

Values are zero-copy views into the mapping: a view keeps its store from
closing (close() raises BufferError while views exist, as mmap does).
Several processes may open, write and read one store at once; each
``store.writer()`` appends to a region of its own, with no shared lock.
Errors derive from recmap.Error (NotFound is also a KeyError).
"""

from ._recmap import (  # noqa: F401
    AlreadyExists,
    Busy,
    Closed,
    DataLoss,
    Error,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Record,
    RecordBatch,
    ReadOnly,
    ResourceExhausted,
    Store,
    Tail,
    UsedAfterFork,
    VerifyIssue,
    VerifyResult,
    Writer,
    compact,
    open,
    verify,
)

__all__ = [
    "AlreadyExists", "Busy", "Closed", "DataLoss", "Error",
    "FailedPrecondition", "Internal", "InvalidArgument", "NotFound",
    "PermissionDenied", "Record", "RecordBatch", "ReadOnly",
    "ResourceExhausted", "Store", "Tail", "UsedAfterFork", "VerifyIssue",
    "VerifyResult", "Writer", "compact", "open", "verify",
]
__version__ = "0.1.0"
