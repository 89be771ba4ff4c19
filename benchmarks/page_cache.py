"""Files and the page cache: drop them from it, and measure how much of them it holds (Linux).

Used by benchmarks that report cold-cache rows (replay.py); import it from a script in benchmarks/.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def evict_from_page_cache(paths: list[str]) -> None:
    """Ask the kernel to drop ``paths`` from the page cache: fsync (dirty pages stay), then
    posix_fadvise(DONTNEED). Needs no root, unlike /proc/sys/vm/drop_caches, and touches nothing else."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def page_cache_resident(paths: list[str]) -> float | None:
    """The fraction of the bytes of ``paths`` in the page cache (util-linux ``fincore``; None without it)."""
    if not shutil.which("fincore") or not paths:
        return None
    resident = size = 0
    for i in range(0, len(paths), 500):
        done = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--raw", "--output", "RES,SIZE", *paths[i : i + 500]],
            capture_output=True,
            text=True,
            check=True,
        )
        for line in done.stdout.splitlines():
            res, total = line.split()
            resident, size = resident + int(res), size + int(total)
    return round(resident / size, 3) if size else None
