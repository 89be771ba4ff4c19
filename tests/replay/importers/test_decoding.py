"""Episode records -> rows: pixel and number encodings, RLDS alignment, bad records, concept labels."""

from __future__ import annotations

import numpy as np
import pytest

from aime.replay.importers.concepts import concept_names, label_concepts
from aime.replay.importers.protobuf import Feature
from aime.replay.importers.rlds import decode_episode
from aime.replay.importers.tasks import ACTION_DIMS, STATE_KEYS, STATE_SIZES, task_spec
from aime.replay.importers.testing import encode_record, rlds_episode
from aime.replay.importers.values import decode_image, decode_numbers

CHEETAH = task_spec("cheetah-run")


@pytest.fixture(scope="module")
def episode():
    return rlds_episode(3, task="cheetah-run", steps=7, image_size=8)


@pytest.mark.parametrize(
    "encoding",
    [
        {"pixels": "png", "numbers": "float"},
        {"pixels": "zlib", "numbers": "zlib"},
        {"pixels": "raw", "numbers": "bytes"},
        {"pixels": "png", "numbers": "bytes", "sequence": True},
    ],
)
def test_every_encoding_decodes_to_the_same_rows(episode, encoding):
    decoded = decode_episode(encode_record(episode, **encoding), CHEETAH)
    rows = decoded.arrays
    np.testing.assert_array_equal(rows.pixels, episode["pixels"].transpose(0, 3, 1, 2))  # (T, C, H, W)
    exact = encoding["numbers"] != "float"  # float lists are float32; float64 bytes are exact
    tol = 0 if exact else 1e-6
    np.testing.assert_allclose(rows.action, episode["action"].astype(np.float32), atol=tol)
    np.testing.assert_allclose(rows.reward, episode["reward"].astype(np.float32), atol=tol)
    state = np.concatenate([episode["observation/position"], episode["observation/velocity"]], axis=1)
    np.testing.assert_allclose(rows.state, state.astype(np.float32), atol=tol)
    assert list(decoded.fields) == ["position", "velocity"]  # dm_control order, not the stored order


def test_rows_keep_rlds_alignment_and_the_final_row_has_no_action(episode):
    record = dict(episode)
    record["action"] = episode["action"].copy()
    record["action"][-1] = 5.0  # a dataset that put junk in the final step
    rows = decode_episode(encode_record(record), CHEETAH).arrays
    np.testing.assert_allclose(rows.action[:-1], episode["action"][:-1], atol=1e-6)  # a_t taken at o_t
    assert not rows.action[-1].any() and rows.reward[-1] == 0.0
    assert rows.is_first.tolist() == [True] + [False] * 6 and rows.is_last.tolist() == [False] * 6 + [True]
    assert rows.discount[-1] == 1.0 and not rows.is_terminal.any()  # a time-limit end


def test_bad_records_say_what_is_wrong(episode):
    wrong_action = dict(episode, action=np.zeros((7, 5)))
    with pytest.raises(ValueError, match="wrong action length: 5 per step, cheetah-run has 6"):
        decode_episode(encode_record(wrong_action), CHEETAH)
    png = encode_record(episode)
    damaged = png.replace(b"IDAT", b"IDAX", 1)  # the first frame's image data chunk
    with pytest.raises(ValueError, match="undecodable image"):
        decode_episode(damaged, CHEETAH)
    with pytest.raises(ValueError, match="undecodable record"):
        decode_episode(b"\x0a\xff\xff\xff", CHEETAH)
    short = Feature("float", numbers=np.zeros(13, np.float32))
    with pytest.raises(ValueError, match="13 values for 7 steps"):
        decode_numbers(short, 7, "reward")
    with pytest.raises(ValueError, match="not a square RGB frame"):
        decode_image(b"\x00" * 10)


def test_task_tables_match_dm_control():
    from dm_control import suite

    for domain, task in (("walker", "walk"), ("cheetah", "run"), ("humanoid", "walk")):
        env = suite.load(domain, task)
        spec = env.observation_spec()
        assert tuple(spec) == STATE_KEYS[domain], domain
        assert {k: int(np.prod(v.shape)) for k, v in spec.items()} == STATE_SIZES[domain], domain
        assert env.action_spec().shape == (ACTION_DIMS[domain],), domain


@pytest.mark.parametrize("task", ["cheetah-run", "walker-walk"])
def test_concepts_from_stored_observations_match_the_live_physics(task):
    from dm_control import suite

    from aime.envs.concepts import ConceptSet

    domain, name = task.split("-")
    env, concepts = suite.load(domain, name, task_kwargs={"random": 1}), ConceptSet.for_task(task)
    rng = np.random.default_rng(0)
    env.reset()
    fields: dict[str, list[np.ndarray]] = {key: [] for key in STATE_KEYS[domain]}
    live = []
    for _ in range(120):
        step = env.step(rng.uniform(-1, 1, env.action_spec().shape))
        for key, value in step.observation.items():
            fields[key].append(np.atleast_1d(value))
        live.append(list(concepts(env.physics).values()))
    stacked = {key: np.stack(values) for key, values in fields.items()}
    assert concept_names(task, set(stacked)) == concepts.names
    np.testing.assert_array_equal(label_concepts(task, stacked), np.array(live))


def test_domains_without_an_inverse_get_no_concepts():
    assert concept_names("humanoid-walk", set(STATE_KEYS["humanoid"])) == ()
    assert concept_names("cheetah-run", {"position"}) == ()  # velocities missing
    assert label_concepts("humanoid-walk", {"velocity": np.zeros((4, 27))}).shape == (4, 0)


def test_a_corrupt_zlib_payload_is_reported_not_silently_read_as_raw(caplog):
    import logging
    import zlib

    from aime.replay.importers.values import decode_numbers

    good = zlib.compress(np.arange(6, dtype="<f8").tobytes())
    corrupt = good[:10] + bytes(len(good) - 10)  # header intact, stream zeroed
    feature = Feature("bytes", bytes_values=[good])
    np.testing.assert_array_equal(decode_numbers(feature, 1, "x").ravel(), np.arange(6))
    with caplog.at_level(logging.WARNING):
        try:
            decode_numbers(Feature("bytes", bytes_values=[corrupt]), 1, "x")
        except ValueError:
            pass  # and then the raw bytes may not even fit: either way, never silently
    assert "did not inflate" in caplog.text
