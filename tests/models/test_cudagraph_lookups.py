"""The reordered CUDA graph trees lookups answer as torch's own, on a path of real storage weak refs.

CUDA graph trees keep, per node on a path, a weak reference to each output's storage
(``StorageWeakRefWrapper``); the lookups need only those and a tensor, so the path here is built from
CPU tensors: some outputs still alive, some freed, views of both, and a slot torch leaves empty.
"""

import types

import pytest
import torch
from torch._inductor.cudagraph_trees import CUDAGraphNode, StorageWeakRefWrapper

from aime.models.cudagraph_lookups import (
    alias_of_live_recorded_tensor,
    is_cuda_graph_recorded_tensor,
    reordered_cudagraph_lookups,
)

TORCH_ALIAS = CUDAGraphNode._is_alias_of_live_recorded_tensor
TORCH_RECORDED = CUDAGraphNode._is_cuda_graph_recorded_tensor


def _path(depths: int = 4, outputs: int = 5):
    """A node whose path holds depths x outputs recorded storages; every third one freed since."""
    kept, freed, path = [], [], []  # freed: dropped when this returns
    for depth in range(depths):
        refs = []
        for index in range(outputs):
            tensor = torch.full((3 + index,), float(depth))
            refs.append(None if (depth, index) == (1, 2) else StorageWeakRefWrapper(tensor))
            (freed if (depth * outputs + index) % 3 == 0 else kept).append((tensor, depth, index))
        path.append(refs)
    return types.SimpleNamespace(path_weakrefs=path), kept


def test_lookups_give_torchs_answers_for_live_freed_aliased_and_unrelated_tensors():
    # made before the path so that no freed output's address can be handed to one of them
    unrecorded = [torch.zeros(4), torch.empty(0)]  # never recorded; an empty storage (pointer 0)
    node, kept = _path()
    assert any(ref is not None and ref() is None for refs in node.path_weakrefs for ref in refs)
    queries = [t for t, _, _ in kept] + [t[1:] for t, _, _ in kept]  # outputs and views into them
    queries += unrecorded
    answers = {
        "alias": [alias_of_live_recorded_tensor(node, t) for t in queries],
        "recorded": [is_cuda_graph_recorded_tensor(node, t) for t in queries],
    }
    assert answers == {
        "alias": [TORCH_ALIAS(node, t) for t in queries],
        "recorded": [TORCH_RECORDED(node, t) for t in queries],
    }
    assert answers["alias"][0] == (kept[0][1], kept[0][2])  # a live output is found where recorded
    assert answers["alias"][-2:] == [None, None] and answers["recorded"][-2:] == [False, False]


def test_a_freed_output_at_the_same_address_is_skipped_for_the_live_one_recorded_after_it():
    live = torch.ones(6)
    freed = torch.ones(6)
    stale = StorageWeakRefWrapper(freed)
    del freed  # its storage goes; the allocator may hand its address to a later output, as here
    stale._data_ptr = live.untyped_storage().data_ptr()
    assert stale() is None
    node = types.SimpleNamespace(path_weakrefs=[[stale], [None, StorageWeakRefWrapper(live)]])
    assert alias_of_live_recorded_tensor(node, live[2:]) == TORCH_ALIAS(node, live[2:]) == (1, 1)
    node.path_weakrefs.pop()
    assert alias_of_live_recorded_tensor(node, live) is TORCH_ALIAS(node, live) is None
    assert is_cuda_graph_recorded_tensor(node, live) is TORCH_RECORDED(node, live) is True


def test_the_methods_are_replaced_inside_only_and_restored_after_an_error():
    with pytest.raises(KeyError), reordered_cudagraph_lookups(True):
        assert CUDAGraphNode._is_alias_of_live_recorded_tensor is alias_of_live_recorded_tensor
        assert CUDAGraphNode._is_cuda_graph_recorded_tensor is is_cuda_graph_recorded_tensor
        raise KeyError("a failing step")
    assert CUDAGraphNode._is_alias_of_live_recorded_tensor is TORCH_ALIAS
    assert CUDAGraphNode._is_cuda_graph_recorded_tensor is TORCH_RECORDED
    with reordered_cudagraph_lookups(False):
        assert CUDAGraphNode._is_alias_of_live_recorded_tensor is TORCH_ALIAS


def test_a_torch_without_the_lookups_runs_its_own_and_says_so(monkeypatch, caplog):
    monkeypatch.delattr(CUDAGraphNode, "_is_cuda_graph_recorded_tensor")
    with caplog.at_level("WARNING", logger="aime.models.cudagraph_lookups"):
        with reordered_cudagraph_lookups(True):
            assert CUDAGraphNode._is_alias_of_live_recorded_tensor is TORCH_ALIAS
    assert "lack the lookups aime reorders" in caplog.text and torch.__version__ in caplog.text
