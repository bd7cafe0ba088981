"""An append-only, fsync'd spool of records waiting for NATS, replayed in order.

File ``<name>.spool`` holds records ``u32 length | u32 crc32 | body`` with
body ``u16 n | subject | u16 n | msg id | payload``; ``<name>.offset`` holds
the byte offset up to which records have been delivered (written atomically).
:meth:`Spool.append` returns only after the batch is on disk (fsync). When the
reader has delivered everything, the file is truncated. A torn record at the
end (a crash mid-append, never acknowledged) is cut off on open.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

_HEAD = struct.Struct("<II")
_LEN16 = struct.Struct("<H")


class Record(NamedTuple):
    subject: str
    msg_id: str
    payload: bytes


def _encode(r: Record) -> bytes:
    subject, msg_id = r.subject.encode(), r.msg_id.encode()
    body = b"".join((_LEN16.pack(len(subject)), subject, _LEN16.pack(len(msg_id)), msg_id, r.payload))
    return _HEAD.pack(len(body), zlib.crc32(body)) + body


def _decode(body: bytes) -> Record:
    (n,) = _LEN16.unpack_from(body, 0)
    subject = body[2 : 2 + n].decode()
    at = 2 + n
    (m,) = _LEN16.unpack_from(body, at)
    msg_id = body[at + 2 : at + 2 + m].decode()
    return Record(subject, msg_id, body[at + 2 + m :])


class Spool:
    def __init__(self, directory: Path, name: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{name}.spool"
        self._offset_path = directory / f"{name}.offset"
        self._lock = threading.Lock()
        self._file = open(self.path, "ab")  # noqa: SIM115 - held open for the spool's life
        self._offset = int(self._offset_path.read_text()) if self._offset_path.exists() else 0
        self._pending = self._recover()

    def _recover(self) -> int:
        """Count the undelivered records; cut off a torn tail."""
        size = self.path.stat().st_size
        if self._offset > size:
            log.warning("%s: offset %d beyond the end (%d); replaying all", self.path, self._offset, size)
            self._offset = 0
        count, good = 0, self._offset
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            while True:
                head = f.read(_HEAD.size)
                if len(head) < _HEAD.size:
                    break
                length, crc = _HEAD.unpack(head)
                body = f.read(length)
                if len(body) < length or zlib.crc32(body) != crc:
                    break
                count += 1
                good = f.tell()
        if good < size:
            log.warning("%s: cutting a torn record at byte %d (%d bytes)", self.path, good, size - good)
            os.ftruncate(self._file.fileno(), good)
            self._file.seek(good)
        return count

    def pending(self) -> int:
        """Records on disk not yet delivered."""
        return self._pending

    def append(self, records: Sequence[Record]) -> None:
        """Write the batch and fsync; returns once it is durable."""
        data = b"".join(map(_encode, records))
        with self._lock:
            self._file.write(data)
            self._file.flush()
            os.fsync(self._file.fileno())
            self._pending += len(records)

    def read(self, max_records: int) -> tuple[list[Record], int]:
        """Up to ``max_records`` undelivered records, oldest first, and the offset after them."""
        with self._lock:
            start, end = self._offset, self._file.tell()
        out: list[Record] = []
        with open(self.path, "rb") as f:
            f.seek(start)
            while len(out) < max_records and f.tell() < end:
                length, _crc = _HEAD.unpack(f.read(_HEAD.size))
                out.append(_decode(f.read(length)))
            return out, f.tell()

    def commit(self, offset: int, delivered: int) -> None:
        """Mark the records before ``offset`` delivered; truncate the file when all are."""
        with self._lock:
            self._pending -= delivered
            if offset >= self._file.tell():
                os.ftruncate(self._file.fileno(), 0)
                self._file.seek(0)
                offset = 0
            self._offset = offset
            tmp = self._offset_path.with_suffix(".tmp")
            with open(tmp, "w") as f:
                f.write(str(offset))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._offset_path)

    def close(self) -> None:
        with self._lock:
            self._file.close()
