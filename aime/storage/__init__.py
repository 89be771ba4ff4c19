"""Where aime's files live and how they become visible: the one atomic writer.

Every file a reader may see while it is being written (replay episodes, import markers, checkpoint
metadata and weights, run summaries, figures) goes through :func:`atomic_write`.
"""

from aime.storage.atomic import (
    atomic_save_figure,
    atomic_write,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    resolve_filesystem,
)

__all__ = [
    "atomic_save_figure",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "resolve_filesystem",
]
