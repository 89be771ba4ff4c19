"""End to end on a tiny trained checkpoint, through the real CLI: extract (Ray Data actors) -> train
(Ray Train, 2 workers) -> eval -> load the pack -> score; and the pack refuses another world model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from aime import checkpoints
from aime.cli.main import main
from aime.lenses.activations import SPLITS, Manifest, read_split
from aime.lenses.metrics import graduates
from aime.lenses.pack import LensPack, PackMismatchError
from aime.replay.split import HeldOutSplit
from aime.replay.store import ReplayStore
from aime.replay.synthetic import write_synthetic_episodes
from aime.replay.windows import Window, read_model_inputs

EPISODES, LENGTH = 8, 20


@pytest.fixture(scope="module")
def lens_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lens_replay")
    write_synthetic_episodes(root, EPISODES, length=LENGTH, image_size=32, action_dim=6, seed=5)
    return root


@pytest.fixture(scope="module")
def extracted(tmp_path_factory, ray_local, trained_checkpoint, lens_store) -> Path:
    out = tmp_path_factory.mktemp("lens") / "activations"
    argv = ["lenses", "extract", str(trained_checkpoint), "--out", str(out), "--episodes", str(lens_store)]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def pack(extracted) -> Path:
    out = extracted.parent / "pack"
    argv = ["lenses", "train", str(extracted), "--out", str(out), "--workers", "2", "--epochs", "4"]
    argv += ["--batch-size", "16", "--activations", "h", "z", "embed"]
    assert main(argv) == 0
    return out


def test_extract_splits_by_episode_and_keeps_held_out_in_test(extracted, trained_checkpoint, lens_store):
    manifest = Manifest.read(extracted)
    ids = sorted({f.meta.episode_id for f in ReplayStore(lens_store).scan()})
    split_ids = [manifest.splits[s].episodes for s in SPLITS]
    assert sorted(sum(split_ids, [])) == ids and all(split_ids), split_ids  # disjoint, complete, non-empty
    held = HeldOutSplit.of(checkpoints.checkpoint_config(trained_checkpoint)).held_out(ids)
    assert held and held == set(manifest.held_out) <= set(manifest.splits["test"].episodes)
    assert manifest.config_hash == checkpoints.config_hash(trained_checkpoint)
    for split in SPLITS:
        table = pq.read_table(extracted / split)
        assert set(table.column("episode").to_pylist()) == set(manifest.splits[split].episodes)
        assert table.num_rows == manifest.splits[split].rows == LENGTH * len(manifest.splits[split].episodes)
        positives = {c: int(np.sum(table.column(f"concept_{c}").to_numpy())) for c in manifest.concepts}
        assert positives == manifest.splits[split].positives


def test_extracted_activations_are_the_frozen_model_over_the_whole_episode(extracted, trained_checkpoint):
    manifest = Manifest.read(extracted)
    episode = manifest.splits["test"].episodes[0]
    table = pq.read_table(extracted / "test", filters=[("episode", "=", episode)]).sort_by("step")
    assert table.column("step").to_pylist() == list(range(LENGTH))
    store = ReplayStore(manifest.episodes_root)
    (path,) = [f.path for f in store.scan() if f.meta.episode_id == episode]
    batch = {
        k: torch.from_numpy(v)
        for k, v in read_model_inputs(store, [Window(path, 0, episode)], LENGTH).items()
    }
    model = checkpoints.load(trained_checkpoint).model
    with torch.no_grad():
        expected = model.encode(batch["obs"], batch["action"].float(), batch["is_first"], sample=False)
    assert set(manifest.activations) == set(expected)
    for name, value in expected.items():
        stored = np.stack(table.column(name).to_numpy(zero_copy_only=False))
        assert stored.shape == (LENGTH, manifest.activations[name])
        # The step after a reset and the per-frame embedding match to float precision. Later recurrent
        # features can differ by a few 1e-2: this checkpoint's z and c at step 3 move by ~1e-2 between
        # 1 and 2 intra-op threads or another batch (a discrete choice inside encode flips), while a
        # wrong episode, step or model is off by O(1).
        np.testing.assert_allclose(stored[0], value[0, 0].numpy(), atol=1e-5, err_msg=name)
        tolerance = 1e-5 if name == "embed" else 0.1
        np.testing.assert_allclose(stored, value[0].numpy(), atol=tolerance, err_msg=name)
    shuffled = np.stack(table.column("embed").to_numpy(zero_copy_only=False))[::-1]
    assert np.abs(shuffled - expected["embed"][0].numpy()).max() > 0.1  # the check can fail


def test_train_writes_a_pack_with_metrics_and_graduation(pack, extracted):
    info = json.loads((pack / "pack.json").read_text())
    manifest = Manifest.read(extracted)
    assert (pack / "lenses.safetensors").is_file() and not list(pack.parent.glob(".*ray_train"))
    assert [(lens["concept"], lens["activation"]) for lens in info["lenses"]] == [
        (c, a) for c in manifest.concepts for a in ("h", "z", "embed")
    ]
    assert info["skipped"] == []  # the synthetic concepts vary
    assert info["training"]["workers"] == 2 and 1 <= info["training"]["epochs_run"] <= 4
    assert info["world_model"]["config_hash"] == manifest.config_hash
    assert info["world_model"]["checkpoint_id"].endswith(f"/{Path(manifest.checkpoint).name}")
    for lens in info["lenses"]:
        assert lens["input_dim"] == manifest.activations[lens["activation"]]
        m = lens["metrics"]
        assert set(m) == {"train", "validation", "test"}
        assert lens["graduated"] == graduates(m["train"]["f1"], m["test"]["f1"])
        assert m["test"]["rows"] == manifest.splits["test"].rows


def test_eval_reports_every_lens_with_baseline_and_heatmap(pack, capsys):
    assert main(["lenses", "eval", str(pack)]) == 0
    report = json.loads((pack / "lens_eval.json").read_text())
    assert (pack / "f1_heatmap.png").read_bytes()[:4] == b"\x89PNG"
    assert len(report["lenses"]) == len(LensPack.load(pack).bank.specs)
    for lens in report["lenses"]:
        assert {"precision", "recall", "f1", "auroc", "baseline_f1", "baseline_accuracy"} <= set(lens["test"])
    assert set(report["best_activation"]) == {lens["concept"] for lens in report["lenses"]}
    assert "best activation per concept" in capsys.readouterr().out


def test_loaded_pack_scores_the_world_model_like_the_dataset(pack, extracted, trained_checkpoint):
    lenses = LensPack.load(pack, world_model=trained_checkpoint)
    data = read_split(
        extracted, "test", lenses.bank.activations, sorted({s.concept for s in lenses.bank.specs})
    )
    probabilities = lenses.score(data.activations)  # (M, N)
    assert probabilities.shape == (len(data), len(lenses.bank.specs))
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    sequence = {k: v[:LENGTH][None] for k, v in data.activations.items()}  # (1, T, D) works too
    assert torch.allclose(lenses.score(sequence)[0], probabilities[:LENGTH])
    named = lenses.named_scores(sequence)
    assert list(named) == lenses.lens_names and named["a@h"]["probability"].shape == (1, LENGTH)
    np.testing.assert_allclose(named["a@h"]["probability"][0], probabilities[:LENGTH, 0].numpy())


def test_pack_refuses_a_world_model_with_another_config_hash(pack, trained_checkpoint, tmp_path):
    other = tmp_path / "other" / "checkpoints" / "train" / trained_checkpoint.name
    shutil.copytree(trained_checkpoint, other)
    (other / checkpoints.CONFIG).write_text((other / checkpoints.CONFIG).read_text() + "# changed\n")
    ours, theirs = checkpoints.config_hash(trained_checkpoint), checkpoints.config_hash(other)
    assert ours != theirs
    with pytest.raises(PackMismatchError) as error:
        LensPack.load(pack, world_model=other)
    assert ours in str(error.value) and theirs in str(error.value)


def test_registry_push_list_pull_remove_and_bf16_export(pack, extracted, tmp_path, capsys):
    from aime.lenses.evaluate import evaluate_pack
    from aime.lenses.registry import Registry

    uri = f"file://{tmp_path / 'registry'}"
    assert main(["lenses", "push", str(pack), "--registry", uri, "--name", "tiny"]) == 0
    assert main(["lenses", "push", str(pack), "--registry", uri, "--name", "tiny", "--bf16"]) == 0
    registry = Registry(uri)
    assert [(e.name, e.version, e.info["dtype"]) for e in registry.entries()] == [
        ("tiny", 1, "float32"),
        ("tiny", 2, "bfloat16"),
    ]
    assert main(["lenses", "list", "--registry", uri]) == 0
    assert "bfloat16" in capsys.readouterr().out
    stored = tmp_path / "registry" / "tiny"
    fp32_bytes = (stored / "v0001" / "lenses.safetensors").stat().st_size
    bf16_bytes = (stored / "v0002" / "lenses.safetensors").stat().st_size
    assert 0.45 < bf16_bytes / fp32_bytes < 0.55, (bf16_bytes, fp32_bytes)

    assert main(["lenses", "pull", "tiny", "--registry", uri, "--out", str(tmp_path / "bf16")]) == 0
    half = LensPack.load(tmp_path / "bf16")
    assert next(half.bank.parameters()).dtype == torch.bfloat16
    full_report = evaluate_pack(pack, extracted, tmp_path / "full_eval")
    half_report = evaluate_pack(tmp_path / "bf16", extracted, tmp_path / "half_eval")
    changes = [
        abs((a["test"]["f1"] or 0.0) - (b["test"]["f1"] or 0.0))
        for a, b in zip(full_report["lenses"], half_report["lenses"], strict=True)
    ]
    print(f"bf16 export: {bf16_bytes / fp32_bytes:.3f}x the bytes; test F1 change max {max(changes):.4f}")
    assert max(changes) <= 0.1, changes

    assert main(["lenses", "remove", "tiny:1", "--registry", uri]) == 0
    assert registry.versions("tiny") == [2]
    assert main(["lenses", "remove", "tiny", "--registry", uri]) == 0
    assert registry.entries() == [] and not stored.exists()
    assert main(["lenses", "pull", "tiny", "--registry", uri, "--out", str(tmp_path / "x")]) == 2


def test_registry_on_s3_lists_only_whole_versions(pack, s3_server, tmp_path):
    from aime.lenses.registry import Registry

    uri = s3_server.uri("lens-registry")
    assert main(["lenses", "push", str(pack), "--registry", uri, "--name", "tiny"]) == 0
    assert main(["lenses", "push", str(pack), "--registry", uri, "--name", "tiny", "--bf16"]) == 0
    registry = Registry(uri)
    versions = [(e.version, e.info["dtype"]) for e in registry.entries("tiny")]
    assert versions == [(1, "float32"), (2, "bfloat16")]
    fs, stored = s3_server.filesystem(), f"{s3_server.bucket}/lens-registry/tiny"
    fp32, bf16 = (fs.get_file_info(f"{stored}/v000{v}/lenses.safetensors").size for v in (1, 2))
    assert 0.45 < bf16 / fp32 < 0.55, (bf16, fp32)
    # A push that died before its last write (pack.json) leaves a version nobody lists or pulls.
    with fs.open_output_stream(f"{stored}/v0003/lenses.safetensors") as stream:
        stream.write(b"half a push")
    assert registry.versions("tiny") == [1, 2]
    assert main(["lenses", "pull", "tiny", "--registry", uri, "--out", str(tmp_path / "pulled")]) == 0
    pulled = LensPack.load(tmp_path / "pulled")
    assert pulled.info["dtype"] == "bfloat16" and pulled.lens_names == LensPack.load(pack).lens_names
    assert main(["lenses", "remove", "tiny", "--registry", uri]) == 0
    assert registry.entries() == []


def test_encode_episodes_in_process_writes_parts_and_counts(untrained_checkpoint, lens_store, tmp_path):
    from aime.lenses.encode import EncodeEpisodes, EpisodePlan

    files = ReplayStore(lens_store).scan()[:3]
    plan = [
        EpisodePlan(f.meta.episode_id, ((f.path, f.num_rows),), s) for f, s in zip(files, SPLITS, strict=True)
    ]
    actor = EncodeEpisodes(str(untrained_checkpoint), str(lens_store), plan, ["a", "c"], str(tmp_path))
    out = actor({"data": np.array([0, 1, 2])})
    assert out["episode"].tolist() == [0, 1, 2] and out["rows"].tolist() == [LENGTH] * 3
    for i, split in enumerate(SPLITS):
        table = pq.read_table(tmp_path / split / "part-000000.parquet")
        assert table.column("episode").to_pylist() == [plan[i].episode_id] * LENGTH
        flags = table.column("concept_c").to_numpy(zero_copy_only=False)
        assert out["positives"][i].tolist() == [table.column("concept_a").to_numpy().sum(), flags.sum()]


def test_long_episodes_are_encoded_in_windows(untrained_checkpoint, lens_store, tmp_path):
    from aime.lenses.encode import EncodeEpisodes, EpisodePlan

    f = ReplayStore(lens_store).scan()[0]
    plan = [EpisodePlan(f.meta.episode_id, ((f.path, f.num_rows),), "train")]
    whole = EncodeEpisodes(str(untrained_checkpoint), str(lens_store), plan, ["a"], str(tmp_path / "whole"))
    windowed = EncodeEpisodes(str(untrained_checkpoint), str(lens_store), plan, ["a"], str(tmp_path / "win"))
    windowed.window = 8  # as if perception.max_frames were 8: spans 0-8, 6-14 (keeps 8-14), 12-20
    whole({"data": np.array([0])})
    windowed({"data": np.array([0])})
    a = pq.read_table(tmp_path / "whole" / "train" / "part-000000.parquet")
    b = pq.read_table(tmp_path / "win" / "train" / "part-000000.parquet")
    assert b.column("step").to_pylist() == list(range(LENGTH))
    h_whole, h_win = (np.stack(t.column("h").to_numpy(zero_copy_only=False)) for t in (a, b))
    np.testing.assert_allclose(h_win[:8], h_whole[:8], atol=1e-5)  # the first window is the same model call
    embed_whole, embed_win = (np.stack(t.column("embed").to_numpy(zero_copy_only=False)) for t in (a, b))
    np.testing.assert_allclose(embed_win, embed_whole, atol=1e-5)  # per-frame: windows change nothing
