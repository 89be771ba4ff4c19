"""The console's warning filters: known library notes dropped, every other warning kept."""

from __future__ import annotations

import warnings

import pytest

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


SIGTERM_TRACEBACK = [
    "Exception ignored in: <function WeakSet.__init__.<locals>._remove at 0x7f7dd1f02480>",
    "Traceback (most recent call last):",
    '  File "/usr/lib/python3.11/_weakrefset.py", line 39, in _remove',
    "    def _remove(item, selfref=ref(self)):",
    "",
    '  File "/venv/lib/python3.11/site-packages/ray/_private/worker.py", line 1063, in sigterm_handler',
    "    raise_sys_exit_with_custom_error_message(",
    '  File "python/ray/_raylet.pyx", line 712, in ray._raylet.raise_sys_exit_with_custom_error_message',
    "SystemExit: 1",
]
OTHER_TRACEBACK = [
    "Exception ignored in: <function Foo.__del__ at 0x7f00>",
    "Traceback (most recent call last):",
    '  File "/work/foo.py", line 3, in __del__',
    "SystemExit: 1",
]


UNRELATED_TRACEBACK = [  # no SystemExit at its end: the scan must not run on into the next block
    "Exception ignored in: <function Bar.__del__ at 0x7f01>",
    "Traceback (most recent call last):",
    '  File "/work/bar.py", line 9, in __del__',
    "ValueError: closed twice",
]
TOKEN_NOTE = "Token authentication is enabled for this Ray cluster"


@pytest.fixture
def forwarded(monkeypatch):
    """A wrapped worker-output handler, what it printed and what it kept (held: no run directory)."""
    from aime.console.filters import _dropping_noise

    monkeypatch.setattr("aime.console.noise._log_path", None)
    held: list[str] = []
    monkeypatch.setattr("aime.console.noise._held", held)
    printed: list[str] = []
    handle = _dropping_noise(lambda batch, **kwargs: printed.extend(batch["lines"]))
    return handle, printed, held


def test_forwarded_worker_output_drops_the_known_sigterm_traceback_whole_and_keeps_it(forwarded):
    handle, printed, held = forwarded
    lines = ["step 4 done", TOKEN_NOTE, *SIGTERM_TRACEBACK, *OTHER_TRACEBACK, TOKEN_NOTE]
    handle({"pid": 42, "lines": lines})
    # Another traceback that merely looks alike, and every line around, reach the console.
    assert printed == ["step 4 done", *OTHER_TRACEBACK]
    # console.log gets the dropped lines in the order the worker wrote them.
    assert held == [f"(42) {line}\n" for line in [TOKEN_NOTE, *SIGTERM_TRACEBACK, TOKEN_NOTE]]
    # A block cut short (its last line in a later batch) is not dropped: nothing is lost.
    printed.clear()
    handle({"pid": 42, "lines": SIGTERM_TRACEBACK[:-1]})
    assert printed == SIGTERM_TRACEBACK[:-1]


def test_an_unrelated_traceback_before_the_known_block_is_never_swallowed(forwarded):
    handle, printed, held = forwarded
    handle({"pid": 7, "lines": [*UNRELATED_TRACEBACK, "step 5 done", *SIGTERM_TRACEBACK]})
    assert printed == [*UNRELATED_TRACEBACK, "step 5 done"]
    assert held == [f"(7) {line}\n" for line in SIGTERM_TRACEBACK]
    # Nor is a message between the known block's first line and its end taken in.
    printed.clear()
    cut = [*SIGTERM_TRACEBACK[:3], "step 6 done", *SIGTERM_TRACEBACK[3:]]
    handle({"pid": 7, "lines": cut})
    assert printed == cut
