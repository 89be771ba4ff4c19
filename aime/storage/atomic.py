"""Write a file so that readers see it whole or not at all.

    local path:   write <dir>/.<name>.<random>.tmp --fsync--> os.replace onto <name> --fsync dir-->
    object store: upload to the final key (S3/GCS publish an object only once the upload completes)

Readers never list dot-names, so a crash leaves at most an invisible temporary file behind. Where the
target lives on another pyarrow filesystem with an atomic rename (HDFS), the same temp + rename runs
through pyarrow, without the fsyncs (pyarrow has none).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pyarrow.fs as pafs

Writer = Callable[[IO[bytes]], Any]  # writes the file's bytes to an open binary stream


def resolve_filesystem(location: str | Path) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path within it) for a local path or any pyarrow filesystem URI (s3://, gs://)."""
    location = str(location)
    if "://" in location and not location.startswith("file://"):
        return pafs.FileSystem.from_uri(location)
    return pafs.LocalFileSystem(), str(Path(location.removeprefix("file://")).resolve())


def atomic_write(path: str | Path, write: Writer, *, fs: pafs.FileSystem | None = None) -> str:
    """Create or replace ``path`` with what ``write`` puts on the stream; returns the final path.

    ``path`` is a local path or URI, or a path within ``fs`` when one is given. Parent folders are
    created. If ``write`` raises, the previous file (if any) is untouched and no partial file remains.
    """
    if fs is None:
        fs, path = resolve_filesystem(path)
    path = str(path)
    if isinstance(fs, pafs.LocalFileSystem):
        return _write_local(Path(path), write)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    if not isinstance(fs, pafs.HadoopFileSystem):
        with fs.open_output_stream(path) as stream:
            write(stream)  # type: ignore[arg-type]
        return path
    temporary = _temporary_name(path)
    try:
        with fs.open_output_stream(temporary) as stream:
            write(stream)  # type: ignore[arg-type]
        fs.move(temporary, path)
    except BaseException:
        _delete_quietly(fs, temporary)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes, *, fs: pafs.FileSystem | None = None) -> str:
    return atomic_write(path, lambda stream: stream.write(data), fs=fs)


def atomic_write_text(path: str | Path, text: str, *, fs: pafs.FileSystem | None = None) -> str:
    return atomic_write_bytes(path, text.encode(), fs=fs)


def atomic_write_json(path: str | Path, data: Any, *, fs: pafs.FileSystem | None = None) -> str:
    """``data`` as indented JSON (values JSON cannot hold are written as strings)."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n", fs=fs)


def atomic_save_figure(path: str | Path, figure: Any, *, dpi: int = 100) -> str:
    """A matplotlib figure as PNG."""
    return atomic_write(path, lambda stream: figure.savefig(stream, format="png", dpi=dpi))


def _write_local(path: Path, write: Writer) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(_temporary_name(str(path)))
    try:
        with open(temporary, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())  # the data is on disk before the name points at it
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)  # and the rename itself survives a power cut
    return str(path)


def _temporary_name(path: str) -> str:
    folder, _, name = path.rpartition("/")
    return f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp"


def _fsync_directory(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on directories; the rename is still atomic
        pass
    finally:
        os.close(fd)


def _delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    try:
        fs.delete_file(path)
    except OSError:
        pass
