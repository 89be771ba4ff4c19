"""What the console leaves out: the libraries' known messages a user cannot act on, kept in a file.

Every filter in this package matches ``NOISE`` (one pattern per known message, never a whole logger
or level). What it drops goes to the run's ``console.log`` (``keep_in``, called once the run directory
exists; lines dropped before that are held until then), and Ray keeps every worker's full output in
its session logs (``/tmp/ray/session_latest/logs``). ``aime -v`` turns the filters off.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

# (where it comes from, what it says): each one is a message the user cannot act on.
KNOWN_NOISE: tuple[tuple[str, str], ...] = (
    ("Ray, every local start", r"Token authentication is enabled for this Ray cluster"),
    ("Ray core worker, Ray's own actors", r"has constructor arguments in the object store and max_restarts"),
    ("DeepSpeed on a CPU", r"Setting accelerator to CPU\. If you have GPU"),
    ("DeepSpeed on a CPU", r"deepspeed_shm_comm_op built successfully"),
    ("torch, via DeepSpeed ZeRO", r"`torch\.distributed\.\w+` is deprecated"),
    ("torch, via DeepSpeed ZeRO", r"^\s*return func\(\*args, \*\*kwargs\)\s*$"),
    ("dm_control / absl", r"settotalmass"),
    ("Ray Data, every dataset", r"Starting execution of Dataset|Execution plan of Dataset"),
    ("Ray Data, every dataset", r"Progress bars disabled\. To enable|Dataset \S+ execution finished in"),
    ("Ray Train's dataset manager", r"ExecutionOptions\.exclude_resources|self\.exclude_resources = "),
    ("Ray Train, every report", r"Reporting training result \d+: TrainingReport"),
    ("Ray Train, every checkpoint of a Tune trial", r"Checkpoint successfully created at: Checkpoint\("),
    ("Ray Tune, every sweep's end", r"Wrote the latest version of all result files and experiment state"),
    ("Ray's raylet, many small actors", r"PYTHON worker processes have been started on node"),
)
NOISE = re.compile("|".join(f"(?:{pattern})" for _, pattern in KNOWN_NOISE))

# Multi-line messages, dropped whole: (where it comes from, its first line, a line only it has, its
# last line). Any other traceback is kept, line for line.
KNOWN_BLOCKS: tuple[tuple[str, str, str, str], ...] = (
    (
        # Ray's SIGTERM handler raises SystemExit; landing in a weakref callback, Python prints it.
        "Ray, an idle actor stopped with SIGTERM (a Tune trial at the end of a sweep)",
        r"^Exception ignored in: ",
        r", in sigterm_handler$",
        r"^SystemExit: \d+$",
    ),
)
_BLOCK_LINES = 40  # the most lines one block may span
# Inside a traceback: its header, an indented frame or source line, a blank line.
_TRACEBACK_LINE = re.compile(r"^(Traceback \(most recent call last\):|\s|$)")


def in_known_blocks(lines: list[str]) -> list[bool]:
    """For each of ``lines``, whether it belongs to one of the KNOWN_BLOCKS (the order is kept)."""
    marked = [False] * len(lines)
    i = 0
    while i < len(lines):
        end = _block_end(lines, i)
        if end is None:
            i += 1
        else:
            marked[i : end + 1] = [True] * (end + 1 - i)
            i = end + 1
    return marked


def _block_end(lines: list[str], start: int) -> int | None:
    """The index of the last line of the known block starting at ``start``, or None.

    The scan stops at the first line that is neither a traceback's nor the block's last line (so a
    message or another block after an unrelated traceback is never taken in), and a block must hold
    its marker line between its first and last line.
    """
    for _, first, marker, last in KNOWN_BLOCKS:
        if not re.search(first, lines[start]):
            continue
        seen_marker = False
        for offset in range(1, min(_BLOCK_LINES, len(lines) - start)):
            line = lines[start + offset].rstrip()
            if re.search(last, line):
                if seen_marker:
                    return start + offset
                break
            if not _TRACEBACK_LINE.match(line):
                break
            seen_marker = seen_marker or bool(re.search(marker, line))
    return None


_enabled = True
_lock = threading.Lock()
_held: list[str] = []  # dropped before a run directory existed
_log_path: Path | None = None


def show_everything() -> None:
    """``aime -v``: install no filter from here on."""
    global _enabled
    _enabled = False


def filtering() -> bool:
    return _enabled


def keep(line: str) -> None:
    """Record a dropped line in the run's console.log (or hold it until there is one)."""
    line = line.rstrip("\r\n") + "\n"
    with _lock:
        if _log_path is None:
            _held.append(line)
            del _held[:-1000]  # bounded: a command that never makes a run directory
            return
        with open(_log_path, "a") as log:
            log.write(line)


def keep_in(path: str | Path) -> None:
    """From now on dropped lines go to ``path`` (the run's console.log), held ones first."""
    global _log_path
    with _lock:
        _log_path = Path(path)
        with open(_log_path, "a") as log:
            log.writelines(_held)
        _held.clear()
