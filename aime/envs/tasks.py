"""The dm_control suite tasks aime knows, and validation of task, size and camera."""

from __future__ import annotations

from typing import Any

# The tasks with concept files and tests; any other suite task also loads, without concepts.
SUPPORTED_TASKS = (
    "cheetah-run",
    "walker-walk",
    "cartpole-swingup",
    "reacher-easy",
    "finger-spin",
    "ball_in_cup-catch",
    "humanoid-walk",
)
# The camera each domain is usually filmed from (DreamerV3 / DMC-VB conventions).
DEFAULT_CAMERA = {"quadruped": 2}
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 8, 1024


def split_task(task: str) -> tuple[str, str]:
    from dm_control import suite

    valid = sorted(f"{d}-{t}" for d, t in suite.ALL_TASKS)
    domain, _, name = task.partition("-")
    if (domain, name) not in suite.ALL_TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(valid)}")
    return domain, name


def check_image_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
        raise ValueError(f"bad image size {size!r}; valid: an int from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}")
    return size


def resolve_camera(physics: Any, domain: str, camera: int | str | None) -> int:
    """Camera id from an id, a name or None (the domain default); ValueError lists the valid ones."""
    model = physics.model
    names = [model.id2name(i, "camera") for i in range(model.ncam)]
    valid = ", ".join(f"{i} ({n})" for i, n in enumerate(names)) + ", -1 (free camera)"
    if camera is None:
        return DEFAULT_CAMERA.get(domain, 0)
    if isinstance(camera, str) and not camera.lstrip("-").isdigit():
        if camera not in names:
            raise ValueError(f"unknown camera {camera!r} for {domain}; valid cameras: {valid}")
        return names.index(camera)
    index = int(camera)
    if not -1 <= index < len(names):
        raise ValueError(f"bad camera {camera!r} for {domain}; valid cameras: {valid}")
    return index


def check_env_config(task: str, image_size: int, camera: int | str | None) -> None:
    """Fail fast in the driver, before any actor starts, with the same messages the env gives."""
    from dm_control import suite

    domain, name = split_task(task)
    check_image_size(image_size)
    if camera is not None:
        env = suite.load(domain, name)
        try:
            resolve_camera(env.physics, domain, camera)
        finally:
            env.close()
