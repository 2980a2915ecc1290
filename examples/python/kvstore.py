"""pykvd's store: an append-only log of checksummed records and the map it
replays into. Knows nothing about baton or HTTP.

Record: header (magic b"PKV1", key length, value length, CRC-32 of
revision + key + value, revision: little-endian "<4sIIIQ") + key + value.
Revisions count up from 1 without gaps.

Writes go through a group commit: every PUT appends its record, and one
fdatasync covers all the records appended meanwhile; only then are they
applied to the map (in log order) and acknowledged. So a reader never sees a
write that a crash could lose.
"""

from __future__ import annotations

import hashlib
import os
import struct
import sys
import threading
import zlib
from typing import Dict, List, Optional

MAGIC = b"PKV1"
HEADER = struct.Struct("<4sIIIQ")
MAX_FIELD = 16 << 20


class StoreError(Exception):
    """The log cannot be read or written as asked."""


def _check(revision: int, key: bytes, value: bytes) -> int:
    return zlib.crc32(value, zlib.crc32(key, zlib.crc32(struct.pack("<Q", revision))))


class _Pending:
    """A record appended but not yet fsynced; its PUT waits for `done`."""

    __slots__ = ("revision", "key", "value", "size", "done", "error")

    def __init__(self, revision: int, key: bytes, value: bytes, size: int) -> None:
        self.revision, self.key, self.value, self.size = revision, key, value, size
        self.done = False
        self.error: Optional[str] = None


class Store:
    """``<data_dir>/kv.log`` and the map replayed from it. Thread-safe."""

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(data_dir, "kv.log")
        self._cv = threading.Condition()
        self._map: Dict[bytes, bytes] = {}
        self.revision = 0  # the last record applied (durable)
        self._digest = b""  # chained SHA-256 of every applied record
        self._offset = 0  # bytes of the log applied
        self._fd: Optional[int] = None  # the writer
        self._writable = False  # false after a failed write or fsync: a restart repairs
        self._appended = 0  # the last revision written (maybe not durable yet)
        self._pending: List[_Pending] = []
        self._syncing = False

    # ---- reading ------------------------------------------------------------

    def get(self, key: bytes) -> Optional[bytes]:
        with self._cv:
            return self._map.get(key)

    def fingerprint(self) -> str:
        """A digest of the whole history up to :attr:`revision`."""
        with self._cv:
            return self._digest[:8].hex() if self._digest else "0" * 16

    def _apply(self, revision: int, key: bytes, value: bytes, size: int) -> None:
        self._map[key] = value
        self.revision = revision
        self._digest = hashlib.sha256(self._digest + HEADER.pack(MAGIC, len(key), len(value), 0, revision)
                                      + key + value).digest()
        self._offset += size

    def replay(self, repair: bool) -> None:
        """Applies the records written since the last replay. ``repair``
        False (warm: another process may be writing): stop at the first
        incomplete record. True (we own the data): cut a torn tail, a last
        record half-written by a crash, which was never acknowledged."""
        with self._cv:
            try:
                with open(self.path, "rb") as f:
                    f.seek(self._offset)
                    data = f.read()
            except FileNotFoundError:
                return
            pos = 0
            while pos < len(data):
                left = len(data) - pos
                good = left >= HEADER.size
                if good:
                    magic, klen, vlen, check, revision = HEADER.unpack_from(data, pos)
                    end = pos + HEADER.size + klen + vlen
                    good = (magic == MAGIC and klen <= MAX_FIELD and vlen <= MAX_FIELD and end <= len(data)
                            and revision == self.revision + 1)
                if good:
                    key = bytes(data[pos + HEADER.size:pos + HEADER.size + klen])
                    value = bytes(data[pos + HEADER.size + klen:end])
                    good = check == _check(revision, key, value)
                if not good:
                    if not repair:
                        return
                    torn = (left < HEADER.size or (data[pos:pos + 4] == MAGIC and end > len(data))
                            or data.count(0, pos) == left)
                    if not torn:
                        raise StoreError(f"{self.path}: damaged record at offset {self._offset} "
                                         f"(after revision {self.revision})")
                    print(f"pykvd: {self.path}: cutting a torn tail of {left} bytes after revision "
                          f"{self.revision}", file=sys.stderr)
                    os.truncate(self.path, self._offset)
                    return
                self._apply(revision, key, value, end - pos)
                pos = end

    def reload(self) -> None:
        """Forgets memory and replays the whole log (another process wrote)."""
        with self._cv:
            self._map.clear()
            self.revision, self._digest, self._offset = 0, b"", 0
            self.replay(repair=True)

    # ---- writing ------------------------------------------------------------

    def open_writer(self) -> None:
        """Opens the log for appending, after a replay that read all of it."""
        with self._cv:
            if self._fd is not None:
                return
            existed = os.path.exists(self.path)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            if not existed:  # make the new file's name durable too
                dfd = os.open(os.path.dirname(self.path) or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            end = os.lseek(fd, 0, os.SEEK_END)
            if end != self._offset:
                os.close(fd)
                raise StoreError(f"{self.path} ends at {end} but {self._offset} bytes were replayed")
            self._fd, self._writable, self._appended = fd, True, self.revision

    def close_writer(self) -> None:
        """Makes everything appended durable and closes the log.

        Raises:
            OSError: the fsync failed (nothing appended since the last good
                one is durable).
        """
        with self._cv:
            while self._syncing:
                self._cv.wait()
            if self._fd is None:
                return
            fd, self._fd = self._fd, None
            try:
                if self._writable:
                    os.fdatasync(fd)
                    self._finish(self._pending, None)
            finally:
                os.close(fd)
                self._writable = False
                self._finish(self._pending, "the log was closed")

    def put(self, key: bytes, value: bytes) -> int:
        """Appends key=value and returns its revision once it is durable.

        Raises:
            StoreError: not writable (no writer, or a write failed).
        """
        if len(key) > MAX_FIELD or len(value) > MAX_FIELD:
            raise StoreError("key or value too large")
        with self._cv:
            if self._fd is None or not self._writable:
                raise StoreError("not writable")
            revision = self._appended + 1
            record = HEADER.pack(MAGIC, len(key), len(value), _check(revision, key, value), revision) + key + value
            try:
                # One write per record, so a reader replaying meanwhile sees it whole or not at all.
                written = os.write(self._fd, record)
                if written != len(record):
                    raise OSError(f"short write ({written} of {len(record)} bytes)")
            except OSError as e:
                self._writable = False  # maybe a half-written record: a restart repairs it
                raise StoreError(f"write {self.path}: {e}") from None
            self._appended = revision
            mine = _Pending(revision, key, value, len(record))
            self._pending.append(mine)
            while not mine.done:
                if self._syncing:
                    self._cv.wait()
                else:
                    self._sync_batch()
            if mine.error is not None:
                raise StoreError(mine.error)
            return revision

    def _sync_batch(self) -> None:
        """Lock held: one fdatasync for every pending record, made outside
        the lock (more records queue meanwhile for the next batch)."""
        batch, self._pending = self._pending, []
        self._syncing = True
        fd, error = self._fd, None
        if fd is None or not self._writable:
            error = "not writable"
        else:
            self._cv.release()
            try:
                os.fdatasync(fd)
            except OSError as e:
                error = f"fsync {self.path}: {e}"
            finally:
                self._cv.acquire()
        if error is not None:
            # After a failed fsync the page cache cannot be trusted: refuse
            # writes until a restart replays the log.
            self._writable = False
            print(f"pykvd: {error}; refusing writes", file=sys.stderr)
        self._syncing = False
        self._finish(batch, error)

    def _finish(self, batch: List[_Pending], error: Optional[str]) -> None:
        for p in batch:
            if error is None:
                self._apply(p.revision, p.key, p.value, p.size)
            p.error, p.done = error, True
        if batch is self._pending:
            self._pending = []
        self._cv.notify_all()
