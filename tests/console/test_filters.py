"""The console's warning filters: known library notes dropped, every other warning kept."""

from __future__ import annotations

import warnings

from aime.console import quiet_known_noise

INDUCTOR_NOTE = (
    "\nOnline softmax is disabled on the fly since Inductor decides to\n"
    "split the reduction. Cut an issue to PyTorch if this is an\nimportant use case"
)


def test_known_warnings_are_dropped_and_others_kept(monkeypatch):
    monkeypatch.setattr("aime.console.noise._enabled", True)  # as in a process started without -v
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        quiet_known_noise()  # filters go in front of "always"
        warnings.warn(INDUCTOR_NOTE, UserWarning, stacklevel=1)
        warnings.warn("`torch.distributed._all_gather_base` is deprecated", FutureWarning, stacklevel=1)
        warnings.warn("a user's own warning", UserWarning, stacklevel=1)
        warnings.warn("Online softmax is disabled on the fly", FutureWarning, stacklevel=1)  # other kind
    assert [str(w.message) for w in shown] == [
        "a user's own warning",
        "Online softmax is disabled on the fly",
    ]


def test_minus_v_installs_no_filter(monkeypatch):
    monkeypatch.setattr("aime.console.noise._enabled", False)  # what `aime -v` sets
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        quiet_known_noise()
        warnings.warn(INDUCTOR_NOTE, UserWarning, stacklevel=1)
    assert [str(w.message) for w in shown] == [INDUCTOR_NOTE]
