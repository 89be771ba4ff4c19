"""Source files of an import: listed under a local directory or any pyarrow filesystem URI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow.fs as pafs

from aime.storage import resolve_filesystem


@dataclass(frozen=True)
class SourceFile:
    """One file to import. ``rel`` (the path below the import root) names its episodes and marker."""

    path: str
    rel: str
    size: int


def list_files(root: str, keep: Callable[[str], bool]) -> list[SourceFile]:
    """Files below ``root`` (or ``root`` itself, if a file) whose relative path ``keep`` accepts, sorted."""
    fs, base = resolve_filesystem(root)
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"no such file or directory: {root}")
    if info.type == pafs.FileType.File:
        return [SourceFile(base, info.base_name, info.size)]
    found = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    files = []
    for entry in found:
        rel = entry.path[len(base) :].lstrip("/")
        if entry.type == pafs.FileType.File and not entry.base_name.startswith(".") and keep(rel):
            files.append(SourceFile(entry.path, rel, entry.size))
    return sorted(files, key=lambda f: f.rel)


def open_input(path: str, root: str) -> pafs.NativeFile:
    """A sequential stream over ``path`` (buffered: records are read in small pieces)."""
    fs, _ = resolve_filesystem(root)
    return fs.open_input_stream(path, buffer_size=1 << 20)
