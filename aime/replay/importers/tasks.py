"""What an importer knows about a dm_control task's stored steps: action size and state layout.

``state`` in the replay store is the task's observation dict flattened in dm_control's key order
(``aime/envs/dmc.py``). Datasets store the same keys but not always in that order (DMC-VB's tools sort
them), so the order is fixed here, per domain, and checked against dm_control by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from aime.envs.tasks import SUPPORTED_TASKS

# dm_control observation keys, in observation_spec() order, and action sizes (tests/replay/importers).
STATE_KEYS: dict[str, tuple[str, ...]] = {
    "walker": ("orientations", "height", "velocity"),
    "cheetah": ("position", "velocity"),
    "humanoid": ("joint_angles", "head_height", "extremities", "torso_vertical", "com_velocity", "velocity"),
}
STATE_SIZES: dict[str, dict[str, int]] = {
    "walker": {"orientations": 14, "height": 1, "velocity": 9},
    "cheetah": {"position": 8, "velocity": 9},
    "humanoid": {
        "joint_angles": 21,
        "head_height": 1,
        "extremities": 12,
        "torso_vertical": 3,
        "com_velocity": 3,
        "velocity": 27,
    },
}
ACTION_DIMS: dict[str, int] = {"walker": 6, "cheetah": 6, "humanoid": 21}
POLICY_LEVELS = ("expert", "medium", "mixed", "random")


@dataclass(frozen=True)
class TaskSpec:
    """``state_keys`` None: a domain without a known layout; the stored keys are used, sorted."""

    task: str
    action_dim: int | None
    state_keys: tuple[str, ...] | None

    @property
    def domain(self) -> str:
        return self.task.split("-", 1)[0]


def task_spec(task: str) -> TaskSpec:
    if "-" not in task:
        known = ", ".join(SUPPORTED_TASKS)
        raise ValueError(f"task {task!r} is not domain-task, e.g. walker-walk; tasks with concepts: {known}")
    domain = task.split("-", 1)[0]
    return TaskSpec(task, ACTION_DIMS.get(domain), STATE_KEYS.get(domain))


def task_from_path_part(part: str) -> str | None:
    """'walker_walk' -> 'walker-walk' for the tasks aime knows (DMC-VB names directories this way)."""
    for task in SUPPORTED_TASKS:
        if part == task.replace("-", "_"):
            return task
    return None
