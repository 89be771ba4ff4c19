"""Concept labels recomputed from stored proprioceptive observations, where they fix the physics.

A concept is a threshold on a physical quantity of the live ``physics`` (``aime/envs/concepts``). A
dataset stores observations, not the MuJoCo state; for a planar body the observations determine every
joint angle and velocity, so the state can be set and the quantities read exactly:

- cheetah: ``position`` is ``qpos[1:]`` and ``velocity`` is ``qvel``. Only ``rootx`` is missing, and no
  concept depends on it (the floor is an infinite plane).
- walker: ``orientations`` holds each body's (xx, xz) rotation entries, i.e. cos and sin of its angle
  in the x-z plane; a hinge's angle is its body's angle minus its parent's (signed by the hinge axis);
  ``height`` is the torso's z, so ``rootz = height - torso's rest height``; ``velocity`` is ``qvel``.

Humanoid (and any other domain) has no such inverse here: ``torso_vertical`` leaves the yaw free and
``extremities`` are egocentric, so the concept columns of those imports are left out (documented in
docs/REPLAY.md). ``concept_names(task)`` says which tasks get concepts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from aime.envs.concepts import ConceptSet

Restorer = Callable[[Any, dict[str, np.ndarray]], np.ndarray]  # (physics, fields (T, d)) -> qpos (T, nq)


def concept_names(task: str, fields: set[str]) -> tuple[str, ...]:
    """The concepts an import of ``task`` with stored observation ``fields`` can label (maybe none)."""
    domain = task.split("-", 1)[0]
    if domain not in RESTORERS or not REQUIRED[domain] <= fields:
        return ()
    try:
        return ConceptSet.for_task(task).names
    except ValueError:  # a task without a concept file
        return ()


def label_concepts(task: str, fields: dict[str, np.ndarray]) -> np.ndarray:
    """(T, K) bool in ``concept_names`` order, from observation fields of shape (T, d)."""
    names = concept_names(task, set(fields))
    steps = len(next(iter(fields.values()))) if fields else 0
    if not names:
        return np.zeros((steps, 0), bool)
    physics, concepts = _physics(task)
    domain = task.split("-", 1)[0]
    qpos = RESTORERS[domain](physics, fields)  # (T, nq)
    qvel = fields["velocity"]  # (T, nv): both domains store qvel as is
    out = np.zeros((steps, len(names)), bool)
    for t in range(steps):
        physics.data.qpos[:] = qpos[t]
        physics.data.qvel[:] = qvel[t]
        physics.forward()
        labels = concepts(physics)
        out[t] = [labels[name] for name in names]
    return out


@cache
def _physics(task: str) -> tuple[Any, ConceptSet]:
    """One physics per task and process (loading a model costs ~0.1 s, and workers import many files)."""
    from dm_control import suite

    domain, name = task.split("-", 1)
    return suite.load(domain, name).physics, ConceptSet.for_task(task)


def _cheetah_qpos(physics: Any, fields: dict[str, np.ndarray]) -> np.ndarray:
    position = fields["position"]  # (T, 8): qpos without rootx
    return np.concatenate([np.zeros((len(position), 1)), position], axis=1)


def _walker_qpos(physics: Any, fields: dict[str, np.ndarray]) -> np.ndarray:
    model = physics.model
    cos_sin = fields["orientations"].reshape(len(fields["orientations"]), -1, 2)  # (T, bodies, [xx, xz])
    angle = np.arctan2(cos_sin[..., 1], cos_sin[..., 0])  # (T, bodies): body b + 1's angle about +y
    angle = np.concatenate([np.zeros((len(angle), 1)), angle], axis=1)  # world body first
    qpos = np.zeros((len(angle), model.nq))
    for joint in range(model.njnt):
        body, address = int(model.jnt_bodyid[joint]), int(model.jnt_qposadr[joint])
        axis = model.jnt_axis[joint]
        if model.jnt_type[joint] == 3:  # hinge about +-y: child angle = parent angle + sign * q
            parent = int(model.body_parentid[body])
            relative = angle[:, body] - angle[:, parent]
            qpos[:, address] = axis[1] * np.arctan2(np.sin(relative), np.cos(relative))
        elif axis[2] == 1.0:  # rootz: the torso's height above its rest position
            qpos[:, address] = fields["height"][:, 0] - model.body_pos[body][2]
    return qpos


RESTORERS: dict[str, Restorer] = {"cheetah": _cheetah_qpos, "walker": _walker_qpos}
REQUIRED = {"cheetah": {"position", "velocity"}, "walker": {"orientations", "height", "velocity"}}
