"""An action's log on disk, and how it is presented: one timestamp per line.

A log is two files (docs/runners.md, "The log"):

- ``<name>.log``: the bytes exactly as they were printed (secrets masked), with
  Conveyor's own lines among them. The worker's pump moves a command's output
  there without looking at it (``os.splice`` from the pipe) when nothing is to
  be masked.
- ``<name>.log.times`` (the *index*): 16-byte records, each the log's size
  after a write and the time of that write (little-endian unsigned 64-bit
  integers: end offset, milliseconds since the epoch, UTC). The bytes up to a
  record's end that no earlier record covers arrived at its time.

Readers (the log API, the dashboard's live log and download) present the log as
lines each starting with ``2026-12-03T18:53:51.123Z `` — the time of the record
holding the line's new line, i.e. when the line was complete, as GitHub and
GitLab show it. Bytes that no record covers yet are not presented until one
does (or the action ended: ``final``). A log without an index was stamped line
by line as it was written (logs from before the index, and an agent's log,
which it ships to the server byte for byte): presented as it is.

Offsets given and returned are byte offsets into ``<name>.log``.
"""

from __future__ import annotations

import os
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

RECORD = struct.Struct("<QQ")
INDEX_SUFFIX = ".times"


def index_path(path: Path) -> Path:
    return path.with_name(path.name + INDEX_SUFFIX)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def stamp(ms: int) -> bytes:
    """``2026-12-03T18:53:51.123Z `` (with its space) for milliseconds since the epoch."""
    moment = datetime.fromtimestamp(ms // 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z ".encode()


class Index:
    """The records of a log's index, searched on disk (a log of hours has many)."""

    def __init__(self, fd: int):
        self.fd = fd
        self.count = os.fstat(fd).st_size // RECORD.size

    def record(self, i: int) -> tuple[int, int]:
        return RECORD.unpack(os.pread(self.fd, RECORD.size, i * RECORD.size))

    @property
    def end(self) -> int:
        """How far the log is covered by records."""
        return self.record(self.count - 1)[0] if self.count else 0

    def first_after(self, offset: int) -> int:
        """The number of the first record whose end is beyond ``offset`` (``count`` if none)."""
        lo, hi = 0, self.count
        while lo < hi:
            mid = (lo + hi) // 2
            if self.record(mid)[0] > offset:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def records(self, first: int, until: int) -> list[tuple[int, int]]:
        """Records from number ``first`` on, up to the first whose end reaches ``until``."""
        out: list[tuple[int, int]] = []
        batch = 256
        i = first
        while i < self.count:
            data = os.pread(self.fd, batch * RECORD.size, i * RECORD.size)
            for rec in RECORD.iter_unpack(data[:len(data) - len(data) % RECORD.size]):
                out.append(rec)
                if rec[0] >= until:
                    return out
            i += batch
        return out


@dataclass(frozen=True)
class Piece:
    text: str
    next_offset: int
    size: int          # the log file's size in bytes
    at_end: bool       # the read reached the end of what is presentable (for now)


def whole_characters(data: bytes) -> int:
    """The length of ``data`` without a UTF-8 sequence cut at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)          # ASCII: nothing cut
        if byte >= 0xC0:              # a lead byte: does its sequence fit?
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= needed else len(data) - back
    return len(data)


def read(path: Path, offset: int, limit: int, *, final: bool) -> Piece:
    """The log from byte ``offset``, at most ``limit`` bytes of it, presented.

    Whole lines only, unless a line is longer than ``limit`` (a piece of it, cut
    at a character) or ``final`` (the action ended: its last line even without
    a new line, and bytes no record covers). Raises ``OffsetBeyondEnd``.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        if offset > 0:
            raise OffsetBeyondEnd(0) from None
        return Piece("", 0, 0, True)
    with f:
        size = os.fstat(f.fileno()).st_size
        if offset > size:
            raise OffsetBeyondEnd(size)
        try:
            index_fd = os.open(index_path(path), os.O_RDONLY)
        except FileNotFoundError:
            index_fd = -1
        try:
            index = Index(index_fd) if index_fd >= 0 else None
            known = size if final or index is None else min(size, index.end)
            start = max(0, offset - 1)
            data = os.pread(f.fileno(), min(limit, max(0, known - offset)) + offset - start,
                            start)
            at_line_start = offset == 0 or data[:1] == b"\n"
            data = data[offset - start:]
            more = offset + len(data) < known
            if more or not final:
                cut = data.rfind(b"\n") + 1
                if cut:
                    data = data[:cut]
                elif more:   # a line longer than limit: a piece of it
                    data = data[:whole_characters(data)]
                else:        # an unfinished line: it comes when it is complete
                    data = b""
            text = data if index is None else _stamped(data, offset, at_line_start, index)
        finally:
            if index_fd >= 0:
                os.close(index_fd)
    return Piece(text.decode("utf-8", errors="replace"), offset + len(data), size, not more)


def _stamped(data: bytes, offset: int, at_line_start: bool, index: Index) -> bytes:
    """``data`` (the log from ``offset``) with a stamp before each line that starts in it.

    A line's stamp is the time of the record holding its new line; the lines ending
    under one record get theirs with one ``bytes.replace``. A last line without a
    new line gets the time of the record holding its last byte here.
    """
    if not data:
        return data
    end = offset + len(data)
    first = index.first_after(offset)
    records = index.records(first, end)
    if not records or records[-1][0] < end:   # bytes no record covers (final): the last time
        last = records[-1][1] if records else (index.record(index.count - 1)[1]
                                                if index.count else now_ms())
        records.append((end, last))
    out = []
    pos = 0
    lead = at_line_start
    for rec_end, ms in records:
        seg_end = min(rec_end, end) - offset
        cut = data.rfind(b"\n", pos, seg_end) + 1
        if cut > pos:
            s = stamp(ms)
            block = data[pos:cut].replace(b"\n", b"\n" + s)[:-len(s)]
            out.append(s + block if lead else block)
            lead, pos = True, cut
        if seg_end >= len(data):
            break
    if pos < len(data):
        out.append((stamp(records[-1][1]) if lead else b"") + data[pos:])
    return b"".join(out)


class OffsetBeyondEnd(Exception):
    def __init__(self, size: int):
        self.size = size
        super().__init__(size)


def chunks(path: Path, *, chunk: int = 1 << 20):
    """The whole log presented, in pieces (a download)."""
    offset = 0
    while True:
        try:
            piece = read(path, offset, chunk, final=True)
        except OffsetBeyondEnd:
            return
        if piece.text:
            yield piece.text.encode("utf-8")
        if piece.next_offset == offset:
            return
        offset = piece.next_offset


def text(path: Path) -> str:
    """The whole log presented, as one string (tests, small logs)."""
    return b"".join(chunks(path)).decode("utf-8", errors="replace")
