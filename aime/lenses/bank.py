"""LensBank: N concept probes scored together, a few batched matrix products per activation.

A lens is an MLP probe on one activation of the world model (Alain & Bengio 2016, "linear classifier
probes", here with two hidden layers as in the original AIME lens code):

    x (B, D) --[standardise per sample, no affine]--> Linear(D, 128) - ReLU - Dropout
             --> Linear(128, 64) - ReLU - Dropout --> Linear(64, 1) --> logit (B,)

The bank stacks the weights of the lenses that read the same activation with the same
standardisation into one group, so scoring is, per group, one GEMM and two batched products:

    {activation: (B, D)} --group g: addmm (B, D) x (D, N_g * 128); baddbmm; einsum--> (N_g, B)
        --cat over groups, index_select to lens order--> logits (B, N)

No per-lens Python loop, no host sync: the groups are a handful (one per activation) and the lens
order is a precomputed index. ``Probe`` is the same lens as a plain module: the reference the bank
is tested and benchmarked against, and a way to move one lens in or out of a bank.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

HIDDEN = (128, 64)
EPS = 1e-5  # the standardisation's epsilon, as nn.LayerNorm's default


@dataclass(frozen=True)
class LensSpec:
    concept: str  # a replay concept name, without the concept_ prefix
    activation: str  # a key of WorldModel.encode's output: z, h, h_prev, embed, c, attention_state
    input_dim: int
    standardise: bool = True  # per-sample standardisation of the input (no affine), train and inference

    @property
    def name(self) -> str:
        return f"{self.concept}@{self.activation}"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Probe(nn.Module):
    """One lens as a plain module: the reference for the bank."""

    def __init__(self, input_dim: int, standardise: bool = True, dropout: float = 0.1):
        super().__init__()
        self.standardise = standardise
        self.net = nn.Sequential(
            nn.Linear(input_dim, HIDDEN[0]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(HIDDEN[0], HIDDEN[1]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(HIDDEN[1], 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        if self.standardise:
            x = F.layer_norm(x, x.shape[-1:], eps=EPS)
        return self.net(x).squeeze(-1)  # (B,)

    def layers(self) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
        first, second, third = (cast(nn.Linear, self.net[j]) for j in (0, 3, 6))
        return first, second, third


class LensGroup(nn.Module):
    """The stacked weights of N_g lenses on one activation. The first layers sit side by side,
    w1 (D, N_g, 128), so all lenses' first layer is one GEMM on the shared input with no weight copy;
    then w2 (N_g, 128, 64) and w3 (N_g, 64). ``LENS_AXIS`` says which axis of each parameter is the lens.
    """

    LENS_AXIS = {"w1": 1}  # every other parameter: axis 0

    def __init__(self, count: int, input_dim: int, standardise: bool, dropout: float):
        super().__init__()
        (h1, h2), n = HIDDEN, count
        self.standardise, self.dropout = standardise, dropout
        self.w1 = nn.Parameter(_uniform((input_dim, n, h1), input_dim))
        self.b1 = nn.Parameter(_uniform((n, h1), input_dim))
        self.w2 = nn.Parameter(_uniform((n, h1, h2), h1))
        self.b2 = nn.Parameter(_uniform((n, 1, h2), h1))
        self.w3 = nn.Parameter(_uniform((n, h2), h2))
        self.b3 = nn.Parameter(_uniform((n, 1), h2))

    def forward(self, x: Tensor) -> Tensor:
        x = x.to(self.w1.dtype)
        if self.standardise:
            x = F.layer_norm(x, x.shape[-1:], eps=EPS)
        B, D = x.shape
        h = torch.addmm(self.b1.view(-1), x, self.w1.view(D, -1))  # (B, N_g * 128)
        h = F.relu(h).view(B, -1, HIDDEN[0]).transpose(0, 1)  # (N_g, B, 128)
        h = F.dropout(h, self.dropout, self.training)  # each lens draws its own mask
        h = F.relu(torch.baddbmm(self.b2, h, self.w2))  # (N_g, B, 64)
        h = F.dropout(h, self.dropout, self.training)
        return torch.einsum("nbk,nk->nb", h, self.w3) + self.b3  # (N_g, B)


class LensBank(nn.Module):
    """Lenses ``specs`` (any mix of concepts, activations and input dims) as one module:
    ``bank({activation: (B, D)}) -> logits (B, N)`` in the order of ``specs``."""

    order: Tensor  # (N,) the grouped column of each lens

    def __init__(self, specs: Sequence[LensSpec], *, dropout: float = 0.1):
        super().__init__()
        assert specs, "a bank needs at least one lens"
        self.specs, self.dropout = tuple(specs), dropout
        keys = sorted({(s.activation, s.standardise) for s in specs})
        self.members: list[list[int]] = [[i for i, s in enumerate(specs) if _key(s) == k] for k in keys]
        for k, members in zip(keys, self.members, strict=True):
            dims = {specs[i].input_dim for i in members}
            assert len(dims) == 1, ("one activation, several input dims", k, dims)
        self.group_keys = keys
        self.groups = nn.ModuleDict(
            {
                _group_name(k): LensGroup(len(m), specs[m[0]].input_dim, k[1], dropout)
                for k, m in zip(keys, self.members, strict=True)
            }
        )
        grouped = [i for members in self.members for i in members]
        inverse = torch.empty(len(specs), dtype=torch.long)
        inverse[torch.tensor(grouped)] = torch.arange(len(specs))
        self.register_buffer("order", inverse, persistent=False)  # grouped column of each lens

    @property
    def activations(self) -> list[str]:
        return sorted({s.activation for s in self.specs})

    def forward(self, inputs: Mapping[str, Tensor]) -> Tensor:
        parts = []
        for key in self.group_keys:
            x = inputs[key[0]]  # (B, D)
            parts.append(self.groups[_group_name(key)](x))  # (N_g, B)
        logits = torch.cat(parts, dim=0)  # (N, B), grouped order
        return logits.index_select(0, self.order).t()  # (B, N), lens order

    @classmethod
    def from_probes(
        cls, specs: Sequence[LensSpec], probes: Sequence[Probe], dropout: float = 0.1
    ) -> LensBank:
        """A bank holding exactly these probes' weights (probe i is lens i)."""
        assert len(specs) == len(probes), (len(specs), len(probes))
        bank = cls(specs, dropout=dropout)
        for i, probe in enumerate(probes):
            group, slot = bank.locate(i)
            _copy_lens(group, slot, probe.layers(), into_bank=True)
        return bank

    def probe(self, index: int) -> Probe:
        """Lens ``index`` as a stand-alone Probe with the bank's weights (fp32, CPU)."""
        spec = self.specs[index]
        probe = Probe(spec.input_dim, spec.standardise, self.dropout)
        group, slot = self.locate(index)
        _copy_lens(group, slot, probe.layers(), into_bank=False)
        return probe

    def locate(self, index: int) -> tuple[LensGroup, int]:
        """The group holding lens ``index`` and its row in the group's stacked weights."""
        key = _key(self.specs[index])
        slot = self.members[self.group_keys.index(key)].index(index)
        return cast(LensGroup, self.groups[_group_name(key)]), slot

    def lens_masks(self, per_lens: Tensor) -> dict[str, Tensor]:
        """A per-lens flag (N,) laid onto every parameter, broadcastable against it: how early
        stopping keeps a lens's weights without a loop over lenses."""
        masks = {}
        for key, members in zip(self.group_keys, self.members, strict=True):
            group = self.groups[_group_name(key)]
            flags = per_lens[torch.tensor(members, device=per_lens.device)]  # (N_g,)
            for name, p in group.named_parameters():
                shape = [1] * p.dim()
                shape[LensGroup.LENS_AXIS.get(name, 0)] = -1
                masks[f"groups.{_group_name(key)}.{name}"] = flags.view(shape)
        return masks


def _copy_lens(group: LensGroup, slot: int, layers: tuple[nn.Linear, ...], *, into_bank: bool) -> None:
    """Copy one lens between a group's row ``slot`` and a probe's three Linear layers."""
    pairs = [
        (group.w1[:, slot], layers[0].weight.t()),
        (group.b1[slot], layers[0].bias),
        (group.w2[slot], layers[1].weight.t()),
        (group.b2[slot, 0], layers[1].bias),
        (group.w3[slot], layers[2].weight[0]),
        (group.b3[slot], layers[2].bias),
    ]
    with torch.no_grad():
        for in_bank, in_probe in pairs:
            (in_bank if into_bank else in_probe).copy_(in_probe if into_bank else in_bank)


def _key(spec: LensSpec) -> tuple[str, bool]:
    return (spec.activation, spec.standardise)


def _group_name(key: tuple[str, bool]) -> str:
    return f"{key[0]}__{'std' if key[1] else 'raw'}"


def _uniform(shape: tuple[int, ...], fan_in: int) -> Tensor:
    """nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for stacked weights."""
    bound = 1.0 / math.sqrt(fan_in)
    return torch.empty(shape).uniform_(-bound, bound)
