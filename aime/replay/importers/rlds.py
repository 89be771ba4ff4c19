"""One RLDS episode record (a ``tf.train.Example`` or ``SequenceExample``) -> replay rows.

RLDS (github.com/google-research/rlds) stores an episode's steps under ``steps/``: step ``t`` holds
``observation`` o_t, the ``action`` a_t taken at it, the ``reward`` and ``discount`` that action earned,
and ``is_first``/``is_last``/``is_terminal``; the final step (``is_last``) holds the final observation
and no real action. That is the replay store's alignment already, so rows are copied as they are;
only the final row's action and reward are zeroed (the store's invariant) and the first and last
flags are forced. TFDS writes an episode as an ``Example`` whose step features are flattened lists
(``steps/observation/pixels`` holds every step's image); a ``SequenceExample`` holds one ``Feature``
per step in its feature lists. Both become one ``Feature`` per key covering all steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aime.replay.episode import EpisodeArrays
from aime.replay.importers.protobuf import Feature, ProtobufError, parse_episode_record
from aime.replay.importers.tasks import TaskSpec
from aime.replay.importers.values import JPEG_MAGIC, PNG_MAGIC, decode_flags, decode_frames, decode_numbers

STEPS = "steps/"
OBSERVATION = "observation/"
LENGTH_KEYS = ("is_first", "is_last", "is_terminal", "reward", "discount")


@dataclass
class DecodedEpisode:
    """Rows in the store's alignment; ``fields`` keeps the state's parts (T, d) for concept labels."""

    arrays: EpisodeArrays
    fields: dict[str, np.ndarray]


def step_features(record: bytes) -> dict[str, Feature]:
    """The record's step features, keyed without ``steps/`` (``observation/pixels``, ``action``...)."""
    try:
        features, lists = parse_episode_record(record)  # an Example's features, or a sequence's lists
        merged = {key: _concatenate(steps) for key, steps in lists.items()} if lists else features
    except ProtobufError as error:
        raise ValueError(f"undecodable record: {error}") from None
    return {key.removeprefix(STEPS): feature for key, feature in merged.items() if _is_step_key(key, merged)}


def decode_episode(
    record: bytes, spec: TaskSpec, *, pixel_key: str = "pixels", float_dtype: str = "<f8"
) -> DecodedEpisode:
    """Decode one episode record; ``ValueError`` says what is wrong with it."""
    features = step_features(record)
    steps = _num_steps(features, pixel_key)
    pixels = decode_frames(_need(features, OBSERVATION + pixel_key), steps, pixel_key)
    action = decode_numbers(_need(features, "action"), steps, "action", float_dtype)
    if spec.action_dim is not None and action.shape[1] != spec.action_dim:
        raise ValueError(
            f"wrong action length: {action.shape[1]} per step, {spec.task} has {spec.action_dim}"
        )
    fields = observation_fields(features, spec, pixel_key, steps, float_dtype)
    terminal = (
        decode_flags(features["is_terminal"], steps, "is_terminal")
        if "is_terminal" in features
        else np.zeros(steps, bool)
    )
    reward = _scalar(features, "reward", steps, float_dtype, default=0.0)
    discount = _scalar(features, "discount", steps, float_dtype, default=1.0)
    return DecodedEpisode(rlds_rows(pixels, action, reward, discount, terminal, fields, spec), fields)


def rlds_rows(
    pixels: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    discount: np.ndarray,
    is_terminal: np.ndarray,
    fields: dict[str, np.ndarray],
    spec: TaskSpec,
) -> EpisodeArrays:
    """Rows already in RLDS alignment -> EpisodeArrays with the store's invariants enforced (no concepts)."""
    T = len(pixels)
    action, reward = action.astype(np.float32), reward.astype(np.float32)
    discount = discount.astype(np.float32)
    action[-1], reward[-1] = 0.0, 0.0  # the final observation has no action (docs/REPLAY.md)
    discount[-1] = 0.0 if is_terminal[-1] else 1.0  # as the collector writes it
    is_first, is_last = np.zeros(T, bool), np.zeros(T, bool)
    is_first[0], is_last[-1] = True, True
    return EpisodeArrays(
        pixels=pixels,
        action=action,
        reward=reward,
        discount=discount,
        is_first=is_first,
        is_last=is_last,
        is_terminal=is_terminal.astype(bool),
        state=flatten_state(fields, spec, T),
        concepts=np.zeros((T, 0), bool),
        policy_version=np.zeros(T, np.int32),
        step=np.arange(T, dtype=np.int32),
    )


def observation_fields(
    features: dict[str, Feature], spec: TaskSpec, pixel_key: str, steps: int, float_dtype: str
) -> dict[str, np.ndarray]:
    """The non-image observation parts, (T, d) each, in state order."""
    stored = sorted(
        key.removeprefix(OBSERVATION)
        for key, feature in features.items()
        if key.startswith(OBSERVATION) and key != OBSERVATION + pixel_key and not _is_images(feature)
    )
    keys = spec.state_keys if spec.state_keys is not None and set(spec.state_keys) <= set(stored) else stored
    return {k: decode_numbers(features[OBSERVATION + k], steps, k, float_dtype) for k in keys}


def flatten_state(fields: dict[str, np.ndarray], spec: TaskSpec, steps: int) -> np.ndarray:
    if not fields:
        return np.zeros((steps, 0), np.float32)
    return np.concatenate(list(fields.values()), axis=1).astype(np.float32)  # (T, S) in key order


def _scalar(features: dict[str, Feature], name: str, steps: int, dtype: str, default: float) -> np.ndarray:
    if name not in features:
        return np.full(steps, default)
    values = decode_numbers(features[name], steps, name, dtype)
    if values.shape[1] != 1:
        raise ValueError(f"{name}: {values.shape[1]} values per step, expected 1")
    return values[:, 0]


def _num_steps(features: dict[str, Feature], pixel_key: str) -> int:
    for key in LENGTH_KEYS:
        if key in features and features[key].kind in ("int64", "float") and len(features[key]):
            return len(features[key])
    pixels = features.get(OBSERVATION + pixel_key)
    if pixels is not None and len(pixels):
        return len(pixels)
    raise ValueError("cannot tell the number of steps: no is_first/is_last/reward list and no images")


def _need(features: dict[str, Feature], key: str) -> Feature:
    if key not in features:
        found = ", ".join(sorted(features)) or "none"
        raise ValueError(f"no 'steps/{key}' feature (step features: {found})")
    return features[key]


def _is_step_key(key: str, features: dict[str, Feature]) -> bool:
    """TFDS flattens with a ``steps/`` prefix; records written without one have only step keys."""
    has_prefix = any(k.startswith(STEPS) for k in features)
    return key.startswith(STEPS) or not has_prefix


def _is_images(feature: Feature) -> bool:
    """Another camera's frames (encoded images), which are not part of the state."""
    first = feature.bytes_values[:1]
    return feature.kind == "bytes" and bool(first) and bytes(first[0][:4]).startswith((PNG_MAGIC, JPEG_MAGIC))


def _concatenate(steps: list[Feature]) -> Feature:
    kinds = {f.kind for f in steps if f.kind}
    if len(kinds) > 1:
        raise ValueError(f"a feature list mixes kinds {sorted(kinds)}")
    kind = kinds.pop() if kinds else ""
    if kind == "bytes":
        return Feature("bytes", bytes_values=[v for f in steps for v in f.bytes_values])
    if kind:
        return Feature(kind, numbers=np.concatenate([f.numbers for f in steps]))
    return Feature()
