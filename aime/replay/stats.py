"""Replay statistics from the file footers alone: no frame is read."""

from __future__ import annotations

from dataclasses import dataclass

from aime.replay.store import ReplayStore


@dataclass(frozen=True)
class ReplayStats:
    root: str
    episodes: int  # distinct episode ids
    files: int
    steps: int  # rows (observations)
    bytes: int
    tasks: tuple[str, ...]
    concepts: tuple[str, ...]
    pixel_shape: tuple[int, ...] | None
    mean_return: float | None
    min_return: float | None
    max_return: float | None
    policy_versions: tuple[int, int] | None
    skipped: tuple[str, ...]

    def lines(self) -> list[str]:
        per_step = self.bytes / max(self.steps, 1)
        out = [
            f"replay root   {self.root}",
            f"episodes      {self.episodes}  ({self.files} files)",
            f"steps         {self.steps}",
            f"bytes         {self.bytes:,}  ({per_step:,.0f} per step)",
            f"tasks         {', '.join(self.tasks) or '-'}",
            f"pixels        {'x'.join(map(str, self.pixel_shape)) if self.pixel_shape else '-'} (C, H, W)",
            f"concepts      {', '.join(self.concepts) or '-'}",
        ]
        if self.mean_return is not None:
            low, high = self.min_return, self.max_return
            out.append(f"return        mean {self.mean_return:.2f}  min {low:.2f}  max {high:.2f}")
        if self.policy_versions:
            out.append(f"policy        versions {self.policy_versions[0]}..{self.policy_versions[1]}")
        if self.skipped:
            out.append(f"skipped       {len(self.skipped)} unreadable files: {', '.join(self.skipped)}")
        return out


def replay_stats(store: ReplayStore) -> ReplayStats:
    files = store.scan()
    returns: dict[str, float] = {}
    for f in files:
        returns[f.meta.episode_id] = returns.get(f.meta.episode_id, 0.0) + f.meta.episode_return
    values = list(returns.values())
    versions = [f.meta.policy_version for f in files]
    return ReplayStats(
        root=store.root,
        episodes=len(returns),
        files=len(files),
        steps=sum(f.num_rows for f in files),
        bytes=sum(f.size_bytes for f in files),
        tasks=tuple(sorted({f.meta.task for f in files})),
        concepts=files[-1].meta.concepts if files else (),
        pixel_shape=files[-1].meta.pixel_shape if files else None,
        mean_return=sum(values) / len(values) if values else None,
        min_return=min(values) if values else None,
        max_return=max(values) if values else None,
        policy_versions=(min(versions), max(versions)) if versions else None,
        skipped=tuple(store.skipped),
    )
