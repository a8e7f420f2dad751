"""Artifact extraction refuses archives that would write outside the workspace."""

from __future__ import annotations

import io
import stat
import zipfile

import pytest
from django.core.files.base import ContentFile

from executions import artifacts


def stored_zip(entries: list[tuple[str, bytes, int]]) -> str:
    """Store a hand-made zip (name, content, unix mode) as an artifact; return its name."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, content)
    return artifacts.storage().save("hand-made.zip", ContentFile(buffer.getvalue()))


REGULAR = stat.S_IFREG | 0o644


@pytest.mark.parametrize("name, reason", [
    ("../evil.txt", "'..' in artifact path"),
    ("ok/../../evil.txt", "'..' in artifact path"),
    ("/tmp/evil.txt", "absolute path in artifact"),
])
def test_an_archive_with_an_escaping_path_is_refused_and_nothing_is_written(
        tmp_path, name, reason):
    storage_name = stored_zip([("first.txt", b"fine", REGULAR), (name, b"evil", REGULAR)])
    workspace = tmp_path / "ws" / "workspace"
    with pytest.raises(ValueError, match=reason):
        artifacts.extract(storage_name, workspace)
    assert list(workspace.iterdir()) == []  # checked whole before anything is written
    assert not (tmp_path / "ws" / "evil.txt").exists()


def test_an_archive_holding_a_symbolic_link_is_refused(tmp_path):
    storage_name = stored_zip([("passwd", b"/etc/passwd", stat.S_IFLNK | 0o777)])
    with pytest.raises(ValueError, match="link in artifact: passwd"):
        artifacts.extract(storage_name, tmp_path / "workspace")


def test_a_path_through_a_link_already_in_the_workspace_is_refused(tmp_path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / "door").symlink_to(outside)
    storage_name = stored_zip([("door/evil.txt", b"evil", REGULAR)])
    with pytest.raises(ValueError, match="escapes the workspace"):
        artifacts.extract(storage_name, workspace)
    assert not (outside / "evil.txt").exists()


def test_a_sibling_folder_sharing_the_workspace_prefix_is_not_inside_it(tmp_path):
    # "/x/workspace2" starts with "/x/workspace": a string prefix test let it through.
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (tmp_path / "workspace2").mkdir()
    (workspace / "link").symlink_to(tmp_path / "workspace2")
    storage_name = stored_zip([("link/x.txt", b"evil", REGULAR)])
    with pytest.raises(ValueError, match="escapes the workspace"):
        artifacts.extract(storage_name, workspace)


def test_a_packed_directory_extracts_back_with_its_executable_bit(tmp_path):
    source = tmp_path / "src"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (source / "bin" / "run.sh").chmod(0o755)
    (source / "notes.txt").write_text("notes")
    stored = artifacts.store_directory(source)
    target = tmp_path / "out"
    artifacts.extract(stored.storage_name, target)
    assert (target / "notes.txt").read_text() == "notes"
    assert (target / "bin" / "run.sh").stat().st_mode & 0o111


def test_the_same_zip_stored_by_a_worker_and_by_a_job_upload_is_kept_once(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.txt").write_text("built")
    packed = artifacts.store_directory(source)
    uploaded = tmp_path / "upload.zip"      # a job worker sends the same bytes back
    with artifacts.storage().open(packed.storage_name, "rb") as f:
        uploaded.write_bytes(f.read())
    sha, name = artifacts.store_zip(uploaded)
    assert (sha, name) == (packed.sha256, packed.storage_name)
    assert name == f"sha256/{sha[:2]}/{sha}.zip"
    assert artifacts.storage().listdir(f"sha256/{sha[:2]}")[1] == [f"{sha}.zip"]
