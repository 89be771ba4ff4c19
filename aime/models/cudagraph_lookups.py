"""CUDA graph trees' lookups of a tensor among the outputs recorded on its path, reordered.

In a run's second step CUDA graph trees record one graph per call of the compiled per-frame steps
(about a hundred for the gpu preset), all on one path of the tree. For every input and output of
each recording, torch (2.11 and 2.13 alike) walks every output recorded before it on the path, and
for each one first asks whether its storage is still alive (a use count read through a weak
reference, in C++) and only then compares data pointers: quadratic in the recordings, with a C++
call in the inner loop. Under cProfile on an H100 these lookups took 81 of that step's 118 s:
12,423 lookups, 36 million liveness checks. Reordered, that step took 13.3 s against torch's 36.6 s,
unprofiled (benchmarks/results/h100/step2_20261205/, README "Step 2: CUDA graph trees' lookups").

The replacements compare the recorded data pointer (an int the wrapper stores) first and ask for
liveness only on a match: the same answer for every tensor (tests/models/test_cudagraph_lookups.py
checks it against torch's own), with one liveness check instead of thousands. Only
``CUDAGraphNode``'s two methods are replaced, and only inside ``reordered_cudagraph_lookups``; where
a torch release no longer has them, torch's own code runs and a warning says so.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch

log = logging.getLogger(__name__)


def alias_of_live_recorded_tensor(node: Any, t: torch.Tensor) -> tuple[int, int] | None:
    """(depth, output index) of the live recorded output that shares ``t``'s storage, or None."""
    ptr = t.untyped_storage().data_ptr()
    for depth, refs in enumerate(node.path_weakrefs):
        for index, ref in enumerate(refs):
            if ref is not None and ref.data_ptr() == ptr and ref() is not None:
                return depth, index
    return None


def is_cuda_graph_recorded_tensor(node: Any, t: torch.Tensor) -> bool:
    """Whether ``t``'s storage is one an output recorded on ``node``'s path was given, live or not."""
    ptr = t.untyped_storage().data_ptr()
    return any(ref is not None and ref.data_ptr() == ptr for refs in node.path_weakrefs for ref in refs)


# CUDAGraphNode's methods, by name, and what replaces each.
_REPLACEMENTS = {
    "_is_alias_of_live_recorded_tensor": alias_of_live_recorded_tensor,
    "_is_cuda_graph_recorded_tensor": is_cuda_graph_recorded_tensor,
}


@contextlib.contextmanager
def reordered_cudagraph_lookups(on: bool = True) -> Iterator[None]:
    """With ``on``, CUDA graph trees' nodes use the lookups above inside, process-wide."""
    node_class = _graph_node_class() if on else None
    if node_class is None:
        yield
        return
    originals = {name: node_class.__dict__[name] for name in _REPLACEMENTS}
    for name, method in _REPLACEMENTS.items():
        setattr(node_class, name, method)
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(node_class, name, method)


def _graph_node_class() -> type | None:
    from torch._inductor import cudagraph_trees

    node_class = getattr(cudagraph_trees, "CUDAGraphNode", None)
    if node_class is None or any(name not in vars(node_class) for name in _REPLACEMENTS):
        log.warning(
            "torch %s's CUDA graph trees lack the lookups aime reorders; recording runs as torch's own",
            torch.__version__,
        )
        return None
    return node_class
