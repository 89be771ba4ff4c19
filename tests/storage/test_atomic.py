"""The atomic writer: a reader sees the old file or the new one, never a part, and no temp remains."""

from __future__ import annotations

import pytest

from aime.storage import atomic_write, atomic_write_text


def test_replaces_whole_files_and_leaves_nothing_beside_them(tmp_path):
    target = tmp_path / "deep" / "folder" / "meta.json"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["meta.json"]


def test_a_failed_write_keeps_the_previous_file_and_no_partial_one(tmp_path):
    target = tmp_path / "summary.json"
    atomic_write_text(target, "complete")

    def write_half_then_fail(stream):
        stream.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, write_half_then_fail)
    assert target.read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
