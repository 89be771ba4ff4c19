"""Physical quantities per dm_control domain, computed from the live ``physics`` at one step.

Each function returns a flat ``{quantity: float}``; concept files threshold them. Add a domain by
writing one function and registering it in ``QUANTITIES`` (its keys are listed in ``.names``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mujoco
import numpy as np

Quantities = Callable[[Any], dict[str, float]]
QUANTITIES: dict[str, Quantities] = {}


def domain(name: str, names: tuple[str, ...]) -> Callable[[Quantities], Quantities]:
    def register(fn: Quantities) -> Quantities:
        fn.names = names  # type: ignore[attr-defined]
        QUANTITIES[name] = fn
        return fn

    return register


def in_contact(physics: Any, geom_a: str, geom_b: str) -> bool:
    """Whether the two named geoms touch in the current contact list."""
    # Raw MuJoCo structures and a list lookup: dm_control's named views and numpy's per-call overhead
    # cost 14 us for the handful of contacts a step has, a quarter of an agent step's Python time.
    model, data = physics.model.ptr, physics.data.ptr
    a, b = _geom_id(model, geom_a), _geom_id(model, geom_b)
    if data.ncon == 0:
        return False
    pairs = data.contact.geom.tolist()  # (ncon, 2)
    return [a, b] in pairs or [b, a] in pairs


def _geom_id(model: Any, name: str) -> int:
    index = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)
    if index < 0:
        raise ValueError(f"no geom named {name!r} in the model")
    return index


@domain(
    "cheetah",
    ("forward_velocity", "torso_upright", "torso_height", "back_foot_contact", "front_foot_contact"),
)
def cheetah(physics: Any) -> dict[str, float]:
    return {
        "forward_velocity": float(physics.speed()),
        "torso_upright": float(physics.named.data.xmat["torso", "zz"]),
        "torso_height": float(physics.named.data.xpos["torso", "z"]),
        "back_foot_contact": float(in_contact(physics, "bfoot", "ground")),
        "front_foot_contact": float(in_contact(physics, "ffoot", "ground")),
    }


@domain(
    "walker",
    ("forward_velocity", "torso_upright", "torso_height", "left_foot_contact", "right_foot_contact"),
)
def walker(physics: Any) -> dict[str, float]:
    return {
        "forward_velocity": float(physics.horizontal_velocity()),
        "torso_upright": float(physics.torso_upright()),
        "torso_height": float(physics.torso_height()),
        "left_foot_contact": float(in_contact(physics, "left_foot", "floor")),
        "right_foot_contact": float(in_contact(physics, "right_foot", "floor")),
    }


@domain("cartpole", ("pole_angle_cosine", "cart_position", "cart_speed", "pole_angular_speed"))
def cartpole(physics: Any) -> dict[str, float]:
    # The first pole only: the helpers return one entry per pole and the two-pole tasks have no concepts.
    return {
        "pole_angle_cosine": float(physics.pole_angle_cosine()[0]),
        "cart_position": float(physics.cart_position()),
        "cart_speed": abs(float(physics.named.data.qvel["slider"][0])),
        "pole_angular_speed": abs(float(physics.angular_vel()[0])),
    }


@domain("reacher", ("finger_to_target_dist", "finger_reach", "joint_speed"))
def reacher(physics: Any) -> dict[str, float]:
    # The arm is planar and rooted at the origin, so the finger's xy norm is how far the arm reaches.
    return {
        "finger_to_target_dist": float(physics.finger_to_target_dist()),
        "finger_reach": float(np.linalg.norm(physics.named.data.geom_xpos["finger", :2])),
        "joint_speed": float(np.linalg.norm(physics.data.qvel)),
    }


@domain("finger", ("hinge_velocity", "spin_speed", "tip_height", "fingertip_contact", "touch_force"))
def finger(physics: Any) -> dict[str, float]:
    # The touch sensors report any contact at the fingertip; the contact list says whether it is the
    # spinner (two capsules).
    touching = in_contact(physics, "fingertip", "cap1") or in_contact(physics, "fingertip", "cap2")
    velocity = float(physics.hinge_velocity())
    return {
        "hinge_velocity": velocity,
        "spin_speed": abs(velocity),
        "tip_height": float(physics.tip_position()[1]),
        "fingertip_contact": float(touching),
        "touch_force": float(physics.named.data.sensordata[["touchtop", "touchbottom"]].sum()),
    }


@domain(
    "ball_in_cup",
    ("in_target", "ball_height_over_target", "ball_to_target_dist", "string_length", "cup_speed"),
)
def ball_in_cup(physics: Any) -> dict[str, float]:
    to_target = physics.ball_to_target()
    return {
        "in_target": float(physics.in_target()),
        # The target is the inside of the cup, centred 5 cm below its rim.
        "ball_height_over_target": float(-to_target[1]),
        "ball_to_target_dist": float(np.linalg.norm(to_target)),
        "string_length": float(physics.named.data.ten_length["string"]),
        "cup_speed": float(np.linalg.norm(physics.named.data.qvel[["cup_x", "cup_z"]])),
    }


@domain("humanoid", ("head_height", "torso_upright", "com_speed", "left_foot_contact", "right_foot_contact"))
def humanoid(physics: Any) -> dict[str, float]:
    # Each foot is two capsules, named "<half>_<foot>" (e.g. left_right_foot is the right foot's left half).
    def foot_contact(foot: str) -> float:
        return float(any(in_contact(physics, f"{half}_{foot}", "floor") for half in ("left", "right")))

    return {
        "head_height": float(physics.head_height()),
        "torso_upright": float(physics.torso_upright()),
        # Horizontal only, as in the walk reward, so dropping straight down does not count as moving.
        "com_speed": float(np.linalg.norm(physics.center_of_mass_velocity()[:2])),
        "left_foot_contact": foot_contact("left_foot"),
        "right_foot_contact": foot_contact("right_foot"),
    }
