"""The log on disk (runners/logfile.py): the output as printed, an index of when it arrived,
and the lines presented with a timestamp each, whatever piece of the log is asked for."""

from __future__ import annotations

import os
import re

import pytest

from runners import base, logfile
from runners.base import LogWriter
from runners.shell import ShellRunner
from tests.runners.conftest import make_ctx

STAMPED = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


@pytest.fixture
def clock(monkeypatch):
    """The index's clock, set by the test (milliseconds since the epoch)."""
    now = [1_764_789_231_000]
    monkeypatch.setattr(logfile, "now_ms", lambda: now[0])
    monkeypatch.setattr(base, "now_ms", lambda: now[0])   # the writer's own name for it
    return now


def records(path):
    data = logfile.index_path(path).read_bytes()
    return list(logfile.RECORD.iter_unpack(data))


def test_a_commands_output_is_stored_as_printed_and_each_line_presented_with_its_time(
        tmp_path):
    ctx = make_ctx(tmp_path, {
        "name": "Run", "actionTypeId": {"category": "Build", "owner": "Custom",
                                        "provider": "Shell", "version": "1"},
        "commands": ["seq 1 50000", "printf 'no new line'", "echo after"]})
    ShellRunner().run(ctx)
    ctx.log.close()
    raw = ctx.log.path.read_bytes()
    # The bytes as printed (the pump moved them with os.splice), the unfinished line
    # ended when its command did.
    numbers = "".join(f"{i}\n" for i in range(1, 50001)).encode()
    assert numbers + b"$ printf 'no new line'\nno new line\n$ echo after\nafter\n" in raw
    assert not STAMPED.search(raw.decode(), 0)
    ends = [end for end, _ in records(ctx.log.path)]
    assert ends == sorted(ends) and ends[-1] == len(raw)
    text = logfile.text(ctx.log.path)
    assert all(STAMPED.match(line) for line in text.splitlines())
    body = [line.split(" ", 1)[1] for line in text.splitlines()]
    start = body.index("1")
    assert body[start:start + 50000] == [str(i) for i in range(1, 50001)]
    assert body[start + 50001:start + 50004] == ["no new line", "$ echo after", "after"]


def test_a_line_gets_the_time_it_was_completed_and_is_shown_only_then(tmp_path, clock):
    path = tmp_path / "a.log"
    log = LogWriter(path)
    log.write_raw(b"one\ntw")
    log.mark()
    clock[0] += 1500
    # While the action runs, the unfinished line waits; at the end it is shown.
    running = logfile.read(path, 0, 1024, final=False)
    assert (running.text, running.next_offset) == ("2025-12-03T19:13:51.000Z one\n", 4)
    assert logfile.read(path, 4, 1024, final=False).text == ""
    assert logfile.read(path, 4, 1024, final=True).text == "2025-12-03T19:13:51.000Z tw"
    log.write_raw(b"o\nthree\n")
    log.mark()
    # "two" was completed by the second write: its time, not the first's.
    assert logfile.read(path, 4, 1024, final=False).text == (
        "2025-12-03T19:13:52.500Z two\n2025-12-03T19:13:52.500Z three\n")
    # Bytes written but not yet recorded are not shown while the action runs.
    log.write_raw(b"four\n")
    assert logfile.read(path, 0, 1024, final=False).next_offset == len(b"one\ntwo\nthree\n")
    log.close()
    assert logfile.text(path).splitlines()[-1] == "2025-12-03T19:13:52.500Z four"


def test_any_piece_of_the_log_is_presented_consistently(tmp_path, clock):
    path = tmp_path / "a.log"
    log = LogWriter(path)
    for i in range(40):
        log.write_raw(f"line {i} ".encode() + b"y" * (i * 37 % 200) + b"\n" * (i % 3 != 0))
        log.mark()
        clock[0] += 7
    log.close()
    whole = logfile.text(path)
    size = path.stat().st_size
    for limit in (1024, 1500, 4096):
        for start in (0, 17):
            # Read from any offset on, piece after piece: the pieces join into the
            # presentation from there, a line cut by the offset without a timestamp.
            offset, pieces = start, []
            while offset < size:
                piece = logfile.read(path, offset, limit, final=True)
                assert piece.next_offset > offset
                pieces.append(piece.text)
                offset = piece.next_offset
            joined = "".join(pieces)
            if start == 0:
                assert joined == whole
            else:
                assert whole.endswith(joined) and not STAMPED.match(joined)


def test_a_log_without_an_index_is_shown_as_it_is_and_stays_in_its_format(tmp_path):
    path = tmp_path / "old.log"
    stamped = b"2026-12-01T10:00:00.000Z one\n2026-12-01T10:00:00.000Z two\n"
    path.write_bytes(stamped)
    assert logfile.text(path) == stamped.decode()
    # A writer opening it (a later line of the same action) keeps stamping inline.
    log = LogWriter(path)
    log.line("three")
    log.close()
    assert not logfile.index_path(path).exists()
    lines = logfile.text(path).splitlines()
    assert len(lines) == 3 and STAMPED.match(lines[2]) and lines[2].endswith(" three")


def test_an_agents_log_is_stamped_inline_and_its_output_still_masked(tmp_path):
    """An agent ships its log file to the server byte for byte (agents/agent.py): inline."""
    path = tmp_path / "agent.log"
    log = LogWriter(path, inline=True)
    log.write_lines(b"", b"one\ntwo\npart", 8)
    log.close()
    assert not logfile.index_path(path).exists()
    lines = path.read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "two"]
    assert all(STAMPED.match(line) for line in lines)


def test_the_index_of_a_deleted_log_starts_again(tmp_path, clock):
    path = tmp_path / "a.log"
    log = LogWriter(path)
    log.line("first life")
    log.close()
    path.unlink()
    log = LogWriter(path)
    log.line("second")
    log.close()
    assert records(path) == [(len(b"second\n"), clock[0])]
    assert os.path.getsize(path) == len(b"second\n")
