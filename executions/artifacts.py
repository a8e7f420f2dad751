"""Artifact content: deterministic zip archives stored once by their SHA-256.

An output directory is packed with sorted entries, fixed timestamps and only
the executable bit kept, so the same files always give the same bytes and the
same hash; the archive is stored in the "artifacts" Django storage under
``sha256/<first two hex>/<hash>.zip`` unless a file with that name exists.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.core.files import File
from django.core.files.storage import storages

_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class StoredContent:
    sha256: str
    size: int
    file_count: int
    storage_name: str


def storage():
    return storages["artifacts"]


def pack(directory: Path, into: Path) -> int:
    """Write a deterministic zip of ``directory`` to ``into``; return the file count."""
    files = sorted(
        p for p in directory.rglob("*") if p.is_file() and not p.is_symlink()
    )
    with zipfile.ZipFile(into, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            rel = path.relative_to(directory).as_posix()
            info = zipfile.ZipInfo(rel, date_time=_EPOCH)
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as src, archive.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return len(files)


def store_zip(path: Path) -> tuple[str, str]:
    """Store the zip at ``path`` by its SHA-256; return (sha256, storage name).

    An identical content is stored only once: a file already under the name is kept.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    name = f"sha256/{sha[:2]}/{sha}.zip"
    store = storage()
    if not store.exists(name):
        with open(path, "rb") as f:
            # Two workers storing the same content at once: the second gets
            # another name from the storage, which is still correct content.
            name = store.save(name, File(f))
    return sha, name


def store_directory(directory: Path) -> StoredContent:
    """Pack and store a directory's files; an identical content is stored only once."""
    with tempfile.NamedTemporaryFile(suffix=".zip", delete=False) as tmp:
        tmp_path = Path(tmp.name)
    try:
        count = pack(directory, tmp_path)
        sha, name = store_zip(tmp_path)
        return StoredContent(sha, tmp_path.stat().st_size, count, name)
    finally:
        tmp_path.unlink(missing_ok=True)


def unsafe_member(name: str, mode: int, destination: Path) -> str | None:
    """Why an archive member may not be extracted into ``destination`` (None: it may).

    Refused: absolute names, ``..`` segments, names that resolve outside the
    destination (through a link already there, say) and links of any kind,
    since ``pack`` never stores one and a link is the classic way out.
    """
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return f"absolute path in artifact: {name}"
    if ".." in parts:
        return f"'..' in artifact path: {name}"
    if stat.S_ISLNK(mode):
        return f"link in artifact: {name}"
    root = destination.resolve()
    if not (destination / name).resolve().is_relative_to(root):
        return f"artifact path escapes the workspace: {name}"
    return None


def extract(storage_name: str, destination: Path) -> None:
    """Unpack a stored artifact into ``destination`` (created if missing).

    Every member is checked before anything is written (``unsafe_member``): an
    archive with one bad entry is refused whole with ``ValueError``.
    """
    destination.mkdir(parents=True, exist_ok=True)
    with storage().open(storage_name, "rb") as f, zipfile.ZipFile(f) as archive:
        members = archive.infolist()
        for info in members:
            problem = unsafe_member(info.filename, info.external_attr >> 16, destination)
            if problem:
                raise ValueError(f"refused artifact {storage_name}: {problem}")
        for info in members:
            archive.extract(info, destination)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(destination / info.filename, mode)
