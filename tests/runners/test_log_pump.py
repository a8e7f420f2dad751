"""The log pump: a command's output to the live log a read at a time (runners/session.py).

The pump is fed exactly the reads a pipe gives; these tests feed it chosen splits
(every split point of a line holding a secret, a UTF-8 character, a line longer
than the pump holds) and read the real log file it wrote, and run real commands
whose output reaches the worker in two reads.
"""

from __future__ import annotations

import fcntl
import os
import re
from datetime import datetime
from pathlib import Path

from runners import logfile
from runners.base import LogWriter
from runners.session import MAX_PENDING, LogPump, ShellSession
from runners.shell import Masker, ShellRunner
from tests.runners.conftest import log_text, make_ctx

STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) ", re.M)
SECRET = "hunter2-s3cr3t"


def pumped(tmp_path: Path, reads: list[bytes], secrets=()) -> list[str]:
    log = LogWriter(tmp_path / "pump.log")
    pump = LogPump(log, Masker(list(secrets)))
    for data in reads:
        pump.feed(data)
    pump.flush()
    log.close()
    text = logfile.text(tmp_path / "pump.log")
    (tmp_path / "pump.log").unlink()
    logfile.index_path(tmp_path / "pump.log").unlink()
    assert all(STAMP.match(line) for line in text.splitlines()), text[:300]
    return [line.split(" ", 1)[1] for line in text.splitlines()]


def test_a_secret_split_across_two_reads_at_any_point_is_masked(tmp_path):
    output = f"before {SECRET} after\nnext {SECRET}\n".encode()
    for cut in range(1, len(output)):
        lines = pumped(tmp_path, [output[:cut], output[cut:]], [SECRET])
        assert lines == ["before *** after", "next ***"], cut


def test_a_secret_split_across_three_reads_is_masked(tmp_path):
    output = f"x {SECRET} y\n".encode()
    for a in range(1, len(output) - 1):
        for b in range(a + 1, len(output)):
            lines = pumped(tmp_path, [output[:a], output[a:b], output[b:]], [SECRET])
            assert lines == ["x *** y"], (a, b)


def test_lines_split_across_reads_reach_the_log_whole_and_a_read_shares_one_stamp(tmp_path):
    log = LogWriter(tmp_path / "a.log")
    pump = LogPump(log)
    pump.feed(b"first li")
    pump.feed(b"ne\nsecond\nthi")
    pump.feed(b"rd\n")
    pump.feed(b"no new line at the end")
    pump.flush()
    log.close()
    lines = logfile.text(tmp_path / "a.log").splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "first line", "second", "third", "no new line at the end"]
    stamps = [STAMP.match(line).group(1) for line in lines]
    # The lines completed by one read arrived together: one stamp for them.
    assert stamps[0] == stamps[1]


def test_a_utf8_character_split_across_reads_stays_one_character(tmp_path):
    text = "café ✓ naïve\n".encode()
    for cut in range(1, len(text)):
        assert pumped(tmp_path, [text[:cut], text[cut:]]) == ["café ✓ naïve"], cut
    # Invalid UTF-8 is replaced, not dropped; ASCII lines around it are untouched.
    assert pumped(tmp_path, [b"ok\nbad \xff by", b"te\nok again\n"]) == [
        "ok", "bad \ufffd byte", "ok again"]


def test_a_line_longer_than_the_pump_holds_is_cut_without_leaking_a_secret(tmp_path):
    # The secret starts 5 bytes before the point the pump must cut the line at.
    head = b"x" * (MAX_PENDING - 5)
    lines = pumped(tmp_path, [head + SECRET[:7].encode(), SECRET[7:].encode() + b" end\n"],
                   [SECRET])
    joined = "".join(lines)
    assert SECRET not in joined and SECRET[:5] not in joined and SECRET[-5:] not in joined
    assert joined == "x" * (MAX_PENDING - 5) + "*** end"
    assert len(lines) == 2   # written in two pieces, as two lines
    # A whole secret near the end of a long read, where the pump cuts the line.
    for tail in range(0, len(SECRET) + 2):
        read = b"x" * MAX_PENDING + SECRET.encode() + b"y" * tail
        joined = "".join(pumped(tmp_path, [read, b" end\n"], [SECRET]))
        assert joined == "x" * MAX_PENDING + "***" + "y" * tail + " end", tail


def test_a_long_line_of_multibyte_characters_is_cut_between_characters(tmp_path):
    line = "é" * MAX_PENDING  # 2 MiB
    lines = pumped(tmp_path, [line.encode()[:MAX_PENDING + 1], line.encode()[MAX_PENDING + 1:]])
    assert "".join(lines) == line and "\ufffd" not in "".join(lines)


def test_a_commands_secret_printed_in_two_writes_is_masked_in_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEYOR_SECRET_PROD_DB", SECRET)
    ctx = make_ctx(tmp_path, {
        "name": "Run", "actionTypeId": {"category": "Build", "owner": "Custom",
                                        "provider": "Shell", "version": "1"},
        "commands": [
            # Half the secret, a pause (the pump reads it), then the rest: two reads.
            'printf "token: %s" "${DB:0:6}"; sleep 0.3; printf "%s done\\n" "${DB:6}"'],
        "environmentVariables": [{"name": "DB", "value": "prod/db",
                                  "type": "SECRETS_MANAGER"}]})
    ShellRunner().run(ctx)
    log = log_text(ctx)
    assert SECRET not in log and SECRET[:6] not in log and SECRET[6:] not in log
    assert re.search(r"Z token: \*\*\* done$", log, re.M), log


def shell_action(tmp_path, *commands):
    ctx = make_ctx(tmp_path, {
        "name": "Run", "actionTypeId": {"category": "Build", "owner": "Custom",
                                        "provider": "Shell", "version": "1"},
        "commands": list(commands)})
    ShellRunner().run(ctx)
    ctx.log.close()
    return ctx


def stamped_lines(ctx) -> list[tuple[datetime, str]]:
    lines = logfile.text(ctx.log.path).splitlines()
    assert all(STAMP.match(line) for line in lines), lines[:5]
    return [(datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f"), line[25:]) for line in lines]


def test_megabytes_moved_in_large_pulls_keep_every_line_whole_and_stamped_in_order(tmp_path):
    # 8 MiB of 80-byte lines at memory speed: the pump takes it in pulls of up to 1 MiB
    # (a line cut by each), far fewer records than lines.
    ctx = shell_action(tmp_path, f"yes {'x' * 79} | head -c {8 << 20}", "echo done")
    records = list(logfile.RECORD.iter_unpack(logfile.index_path(ctx.log.path).read_bytes()))
    lines = stamped_lines(ctx)
    body = [text for _, text in lines]
    start = body.index("x" * 79)
    count = (8 << 20) // 80
    assert body[start:start + count] == ["x" * 79] * count
    # (the last line of `head -c` is cut: ended by the pump when its command ended)
    assert body[start + count] == "x" * ((8 << 20) % 80) and body[-2:] == ["$ echo done", "done"]
    assert len(records) < count / 100
    times = [moment for moment, _ in lines]
    assert times == sorted(times)


def test_a_line_split_across_pulls_gets_the_time_of_the_pull_that_completed_it(tmp_path):
    ctx = shell_action(tmp_path, "printf 'one\\ntw'; sleep 1; printf 'o\\nthree\\n'")
    lines = dict((text, moment) for moment, text in stamped_lines(ctx))
    # "two" was completed 1 s after "one": it and "three" arrived together (half a second
    # of margin for a loaded machine that stamps "one" late).
    assert lines["two"] == lines["three"]
    assert (lines["two"] - lines["one"]).total_seconds() >= 0.5


def test_a_pause_for_trickling_output_ends_when_the_command_answers(tmp_path):
    # The pump waits for a few milliseconds of output to gather after a small pull; a
    # command that ended meanwhile (its status on the session's status pipe) ends the
    # wait: nothing more is coming.
    ctx = make_ctx(tmp_path, {"name": "Run", "commands": []})
    session = ShellSession(ctx, env={}, cwd=ctx.workspace)
    status_r, status_w = os.pipe()
    try:
        session._status_r = status_r
        os.write(session._out_w, b"a little\n")
        # Nothing answered: the pause runs (True, more may be taken) ...
        assert session._gather(session._out_r) is True
        # ... and after the answer it ends at once, the output left for the drain.
        os.write(status_w, b"status 0\0")
        assert session._gather(session._out_r) is False
        # A pipe already holding enough is taken without a pause.
        os.write(session._out_w, b"y" * session._enough)
        os.close(status_w)
        status_w = -1
        assert session._gather(session._out_r) is True
    finally:
        session._status_r = -1
        session.close()
        os.close(status_r)
        if status_w >= 0:
            os.close(status_w)
    assert log_text(ctx).count("a little") == 1


def test_a_log_whose_file_refuses_splice_still_gets_every_byte_in_order(tmp_path):
    # A file opened for appending refuses os.splice (EINVAL), as some file systems do:
    # what the pump already moved into its relay pipe is written as bytes, and the pump
    # reads and writes from then on.
    log = LogWriter(tmp_path / "a.log")
    fcntl.fcntl(log._fd, fcntl.F_SETFL, fcntl.fcntl(log._fd, fcntl.F_GETFL) | os.O_APPEND)
    pump = LogPump(log)
    read, write = os.pipe()
    try:
        os.write(write, b"first line\nsecond ")
        assert pump.pull(read) == len(b"first line\nsecond ")
        os.write(write, b"half\nthird line\n")
        pump.pull(read)
        pump.flush()
    finally:
        os.close(read)
        os.close(write)
    log.close()
    assert (tmp_path / "a.log").read_bytes() == b"first line\nsecond half\nthird line\n"
    lines = logfile.text(tmp_path / "a.log").splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["first line", "second half",
                                                         "third line"]
