"""Locations: a local path or a pyarrow filesystem URI (``s3://...``, ``gs://...``), joined, read,
listed and removed the same way. Writes go through ``atomic_write`` (atomic.py), which takes both."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs

from aime.storage.atomic import resolve_filesystem
from aime.storage.mirror import as_uri, is_uri


def join(location: str | Path, *parts: str) -> str:
    """``location/part/...``: a URI stays a URI, a local path becomes absolute."""
    base = str(location).rstrip("/") if is_uri(location) else str(Path(location).resolve())
    return "/".join([base, *parts])


def is_file(location: str | Path) -> bool:
    fs, path = resolve_filesystem(location)
    return fs.get_file_info(path).type == pafs.FileType.File


def read_bytes(location: str | Path) -> bytes:
    fs, path = resolve_filesystem(location)
    with fs.open_input_stream(path) as stream:
        return stream.read()


def read_text(location: str | Path) -> str:
    return read_bytes(location).decode()


def list_files(folder: str | Path, suffix: str = "") -> list[str]:
    """The files directly in ``folder`` whose names end with ``suffix``, sorted, as locations of the
    same kind (URIs for a URI); none for a missing folder."""
    fs, path = resolve_filesystem(folder)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    found = sorted(i.path for i in infos if i.type == pafs.FileType.File and i.path.endswith(suffix))
    return [as_uri(str(folder), p) for p in found] if is_uri(folder) else found


def remove(location: str | Path) -> None:
    """Delete a file or a folder with everything in it; nothing happens when it does not exist."""
    fs, path = resolve_filesystem(location)
    kind = fs.get_file_info(path).type
    if kind == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif kind == pafs.FileType.File:
        fs.delete_file(path)
