"""DMC-VB TFRecords -> replay store, through Ray: episodes, values, metadata, skip report, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aime.cli.main import main
from aime.replay import ReplayStore
from aime.replay.importers import DmcvbImporter, WriteSettings, import_file, run_import
from aime.replay.importers.testing import encode_record, rlds_episode, write_dmcvb_subset, write_tfrecord
from aime.replay.importers.tfrecord import frame_record

STEPS, SIZE, TASK = 11, 16, "cheetah-run"


def episode(index: int) -> dict[str, np.ndarray]:
    return rlds_episode(index, task=TASK, steps=STEPS, image_size=SIZE)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Five files: PNG + float lists, zlib pixels + zlib float64 bytes, damaged records, a cut file."""
    root = tmp_path_factory.mktemp("dmcvb")
    write_dmcvb_subset(
        root, policy_level="expert", files=2, episodes_per_file=2, steps=STEPS, image_size=SIZE
    )
    write_dmcvb_subset(
        root, policy_level="medium", files=1, episodes_per_file=2, steps=STEPS, image_size=SIZE, seed=1,
        pixels="zlib", numbers="zlib",
    )  # fmt: skip
    damaged = root / "locomotion/cheetah_run/random/none/dmc_vb-train.tfrecord-00000-of-00001"
    bad_crc = bytearray(frame_record(encode_record(episode(11))))
    bad_crc[40] ^= 0xFF
    wrong_action = encode_record(dict(episode(12), action=np.zeros((STEPS, 4))))
    bad_image = encode_record(episode(13)).replace(b"IDAT", b"IDAX", 1)
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(
        frame_record(encode_record(episode(10)))
        + bytes(bad_crc)
        + frame_record(wrong_action)
        + frame_record(bad_image)
        + frame_record(encode_record(episode(14), numbers="bytes"))
    )
    cut = root / "locomotion/cheetah_run/mixed/none/dmc_vb-train.tfrecord-00000-of-00001"
    size = write_tfrecord(cut, [encode_record(episode(20)), encode_record(episode(21))])
    with open(cut, "r+b") as f:
        f.truncate(size - 50)
    return root


def test_import_writes_every_readable_episode_and_reports_the_rest(ray_local, dataset, tmp_path):
    out = str(tmp_path / "replay")
    summary = run_import(DmcvbImporter(str(dataset)), WriteSettings(out=out), workers=2, progress=False)
    assert (summary.files, summary.imported_files, summary.already_imported) == (5, 5, 0)
    assert (
        summary.episodes == 4 + 2 + 2 + 1 and summary.steps == 9 * (STEPS - 1) and summary.rows == 9 * STEPS
    )
    skipped = {(s.file.split("/")[2], s.record): s.reason for s in summary.skipped}
    assert set(skipped) == {("random", 1), ("random", 2), ("random", 3), ("mixed", 1)}
    assert skipped["random", 1] == "bad data checksum (CRC32C)"
    assert skipped["random", 2].startswith("wrong action length: 4 per step")
    assert "undecodable image" in skipped["random", 3]
    assert skipped["mixed", 1].startswith("truncated file")

    episodes = ReplayStore(out).scan()
    assert len(episodes) == 9 and all(e.num_rows == STEPS for e in episodes)
    levels = sorted(e.meta.extra["policy_level"] for e in episodes)
    assert levels == ["expert"] * 4 + ["medium"] * 2 + ["mixed"] + ["random"] * 2
    meta = next(
        e.meta for e in episodes if e.meta.extra["policy_level"] == "random" and e.meta.extra["record"] == 4
    )
    assert meta.source == "dmcvb" and meta.task == TASK and meta.extra["subset"] == "cheetah_run/random/none"
    assert meta.pixel_shape == (3, SIZE, SIZE) and meta.action_dim == 6 and meta.state_dim == 17
    assert meta.concepts == ("moving_forward", "fast", "flipped", "back_foot_contact", "front_foot_contact")

    # Values of one episode: record 4 of the damaged file is episode(14), float64 bytes: exact.
    path = next(e.path for e in episodes if e.meta is meta)
    table = ReplayStore(out).open(path).read()
    expected = episode(14)
    pixels = np.frombuffer(table.column("pixels").combine_chunks().buffers()[1], np.uint8)
    np.testing.assert_array_equal(
        pixels.reshape(STEPS, 3, SIZE, SIZE), expected["pixels"].transpose(0, 3, 1, 2)
    )
    action = np.stack(table.column("action").to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(action, expected["action"].astype(np.float32))  # a_t at row t, last zero
    np.testing.assert_array_equal(table.column("reward").to_numpy(), expected["reward"].astype(np.float32))
    assert table.column("is_last").to_pylist() == [False] * (STEPS - 1) + [True]


def test_a_second_run_skips_imported_files(ray_local, dataset, tmp_path):
    out = str(tmp_path / "replay")
    importer = DmcvbImporter(str(dataset), subsets=("cheetah_run/expert",))
    first = run_import(importer, WriteSettings(out=out), progress=False)
    assert (first.files, first.episodes) == (2, 4)
    names = {p: Path(p).stat().st_mtime_ns for p in ReplayStore(out).list_names()}
    again = run_import(importer, WriteSettings(out=out), progress=False)
    assert (again.imported_files, again.already_imported, again.episodes) == (0, 2, 4)
    assert {p: Path(p).stat().st_mtime_ns for p in ReplayStore(out).list_names()} == names


def test_names_are_deterministic_and_chunks_cover_the_episode(dataset, tmp_path):
    importer = DmcvbImporter(str(dataset), subsets=("expert",))
    file = importer.list_files()[0]
    settings = WriteSettings(out=str(tmp_path / "a"), chunk_steps=4)
    report = import_file(importer, file, settings)
    import_file(importer, file, WriteSettings(out=str(tmp_path / "b"), chunk_steps=4))
    names_a = [Path(p).name for p in ReplayStore(settings.out).list_names()]
    assert names_a == [Path(p).name for p in ReplayStore(str(tmp_path / "b")).list_names()]
    assert len(names_a) == 2 * 3 and names_a[0].startswith("00000000-000000-dmcvb-")  # 11 rows: 4 + 4 + 3
    chunks = ReplayStore(settings.out).scan()[:3]
    assert [c.meta.chunk_index for c in chunks] == [0, 1, 2] and report.rows == 2 * STEPS


def test_paths_select_subsets_and_an_unknown_task_needs_the_flag(dataset, tmp_path):
    assert len(DmcvbImporter(str(dataset), subsets=("medium/none", "mixed")).list_files()) == 2
    odd = tmp_path / "somewhere" / "data.tfrecord-00000-of-00001"
    write_tfrecord(odd, [encode_record(episode(0))])
    with pytest.raises(ValueError, match="pass --task"):
        DmcvbImporter(str(tmp_path / "somewhere")).list_files()
    assert DmcvbImporter(str(odd), task=TASK).list_files()[0].rel == odd.name


def test_the_command_line_imports_and_prints_a_summary(ray_local, dataset, tmp_path, capsys):
    out = tmp_path / "replay"
    argv = ["replay", "import", "dmcvb", str(dataset), "--subset", "medium", "--out", str(out)]
    assert main([*argv, "--no-progress", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 2 and summary["skipped"] == [] and summary["out"] == str(out)
    with pytest.raises(SystemExit):
        main(["replay", "import", "dmcvb", "--help"])
    assert "--subset" in capsys.readouterr().out
