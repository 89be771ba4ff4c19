"""A console a person can read: aime's own lines, not the libraries' known, unactionable noise.

    noise.py    KNOWN_NOISE / NOISE, and the run's console.log that keeps what is dropped
    filters.py  warnings and logging handlers (driver, training workers), worker output Ray forwards
    native.py   native (C++) lines on the driver's own stderr

``aime.cli`` installs them (``setup_logging``), ``init_ray`` adds Ray's handlers and forwarding, and
``create_run_dir`` points console.log into the run directory. The tests run the main job and assert
that no line of its console matches ``NOISE``.
"""

from aime.console.filters import drop_forwarded_noise, quiet_known_noise
from aime.console.native import filter_native_stderr
from aime.console.noise import KNOWN_NOISE, NOISE, filtering, keep_in, show_everything

__all__ = [
    "KNOWN_NOISE",
    "NOISE",
    "drop_forwarded_noise",
    "filter_native_stderr",
    "filtering",
    "keep_in",
    "quiet_known_noise",
    "show_everything",
]
