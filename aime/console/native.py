"""Known noise that native code (Ray's C++ core worker) writes straight to this process's stderr.

No Python filter sees those lines, so the driver's file descriptor 2 is routed through a pipe: a
thread passes everything on to the real stderr except complete lines that match ``NOISE``, which go to
the run's console.log. Progress bars (``\\r`` updates) pass as they are written; text after a possible
log prefix ("[2...") is held until its line is complete. At exit the descriptor is restored and the
pipe drained, so nothing written before exit is lost.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

from aime.console.noise import NOISE, filtering, keep

_SEGMENT = re.compile(rb"[^\r\n]*(?:\r\n|\r|\n)")  # a complete segment of console output
_LOG_PREFIX = b"[2"  # native log lines start "[2026-12-02 03:12:55,578 E ...]"
_installed = False


def filter_native_stderr() -> None:
    """Route fd 2 through the filter (once per process; not with ``aime -v``)."""
    global _installed
    if _installed or not filtering():
        return
    _installed = True
    sys.stderr.flush()
    console = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(target=_pump, args=(read_end, console), name="aime-stderr", daemon=True)
    thread.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(console, 2)  # closes the pipe's last write end: the pump reads EOF and drains
        thread.join(timeout=5)

    atexit.register(restore)


def _pump(read_end: int, console: int) -> None:
    try:
        _filter_until_eof(read_end, console)
    except Exception:  # never leave fd 2 writing into a pipe nobody reads: fall back to the console
        os.dup2(console, 2)
        while chunk := os.read(read_end, 65536):
            _write_all(console, chunk)
    os.close(read_end)


def _filter_until_eof(read_end: int, console: int) -> None:
    pending = b""  # the current incomplete segment
    sent = 0  # bytes of it already written
    while chunk := os.read(read_end, 65536):
        pending += chunk
        position = 0
        for segment in _SEGMENT.finditer(pending):
            _emit(console, segment.group(), sent)
            position, sent = segment.end(), 0
        pending = pending[position:]
        # Show a partial segment now (a progress bar), up to where a native log line could begin.
        safe = pending.find(_LOG_PREFIX, sent)
        upto = len(pending) if safe < 0 else safe
        if upto > sent:
            _write_all(console, pending[sent:upto])
            sent = upto
    if pending:
        _emit(console, pending, sent)


def _emit(console: int, segment: bytes, sent: int) -> None:
    """Write what is left of a complete segment, unless that is known noise (then keep it)."""
    rest = segment[sent:]
    text = rest.decode(errors="replace")
    if NOISE.search(text):
        keep(text)
    elif rest:
        _write_all(console, rest)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
