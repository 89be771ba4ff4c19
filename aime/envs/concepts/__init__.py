"""Named boolean concepts read off the physics state at every agent step.

A concept is a threshold on a physical quantity: ``quantities.py`` computes the quantities of each
domain (speeds, heights, contacts...) and ``<task>.yaml`` names the concepts of a task and their
thresholds. A concept is true when its quantity is above ``above`` and below ``below`` (each bound
optional)::

    moving_forward: {quantity: forward_velocity, above: 0.5}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from aime.envs.concepts.quantities import QUANTITIES

CONCEPT_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ConceptRule:
    name: str
    quantity: str
    above: float | None = None
    below: float | None = None

    def holds(self, value: float) -> bool:
        return (self.above is None or value > self.above) and (self.below is None or value < self.below)


class ConceptSet:
    """The concepts of one task: ``concepts(physics) -> {name: bool}`` in a fixed order."""

    def __init__(self, domain: str, rules: tuple[ConceptRule, ...]):
        if domain not in QUANTITIES:
            raise ValueError(
                f"no concept quantities for domain {domain!r}; have: {', '.join(sorted(QUANTITIES))}"
            )
        self.domain = domain
        self.rules = rules
        self.names = tuple(rule.name for rule in rules)

    @classmethod
    def empty(cls, domain: str) -> ConceptSet:
        """No concepts: for suite tasks without a concept file."""
        out = cls.__new__(cls)
        out.domain, out.rules, out.names = domain, (), ()
        return out

    @classmethod
    def for_task(cls, task: str) -> ConceptSet:
        path = CONCEPT_DIR / f"{task}.yaml"
        if not path.exists():
            valid = sorted(p.stem for p in CONCEPT_DIR.glob("*.yaml"))
            raise ValueError(f"no concept file for task {task!r}; tasks with concepts: {', '.join(valid)}")
        with open(path) as f:
            spec: dict[str, Any] = yaml.safe_load(f) or {}
        rules = tuple(_parse_rule(name, body, path) for name, body in spec.items())
        return cls(task.split("-", 1)[0], rules)

    def quantities(self, physics: Any) -> dict[str, float]:
        return QUANTITIES[self.domain](physics)

    def __call__(self, physics: Any) -> dict[str, bool]:
        if not self.rules:
            return {}
        values = self.quantities(physics)
        return {rule.name: rule.holds(values[rule.quantity]) for rule in self.rules}


def _parse_rule(name: str, body: Any, path: Path) -> ConceptRule:
    if not isinstance(body, dict) or "quantity" not in body:
        raise ValueError(f"{path}: concept {name!r} needs a mapping with 'quantity' and 'above'/'below'")
    unknown = set(body) - {"quantity", "above", "below"}
    if unknown:
        raise ValueError(
            f"{path}: concept {name!r} has unknown keys {sorted(unknown)}; valid: quantity, above, below"
        )
    if body.get("above") is None and body.get("below") is None:
        raise ValueError(f"{path}: concept {name!r} needs 'above' or 'below'")
    rule = ConceptRule(
        name=name,
        quantity=str(body["quantity"]),
        above=None if body.get("above") is None else float(body["above"]),
        below=None if body.get("below") is None else float(body["below"]),
    )
    domain = path.stem.split("-", 1)[0]
    probe = QUANTITIES.get(domain)
    known = getattr(probe, "names", None)
    if known is not None and rule.quantity not in known:
        raise ValueError(
            f"{path}: concept {name!r} uses unknown quantity {rule.quantity!r}; known: {', '.join(known)}"
        )
    return rule
