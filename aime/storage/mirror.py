"""Run directories on shared storage (``results_dir=s3://bucket/runs``, ``gs://...``).

A run whose directory is a URI is worked on in a local staging folder and mirrored:

    <URI>/<run_id>/                       the run directory every node and later command reads
        config.yaml, metrics.jsonl, ...   pushed from staging (at checkpoints and when a command ends)
        checkpoints/                      written there directly by Ray Train (storage_filesystem)
        replay/                           written there directly by the rollout actors
        lenses/                           written there directly by the lens stage's actors and workers
    <staging>/<name>-<hash>/              the driver's working copy: what the driver writes, and the
        .aime-remote                      checkpoints it pulled to read (model files, never DeepSpeed
                                          states, episodes or lens activations); removed when the
                                          command ends

Nothing a worker needs is in staging: workers read and write the URI. Staging is
``$AIME_STAGING_DIR`` (default: the system temp folder's ``aime-staging``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO

import pyarrow.fs as pafs

from aime.storage.atomic import atomic_write, atomic_write_bytes, resolve_filesystem

MARKER = ".aime-remote"  # in a staging folder: the URI it mirrors
NOT_PUSHED = ("checkpoints", "replay", "lenses")  # written at the URI directly by workers and actors
NOT_PULLED = ("replay", "deepspeed", "activations")  # episodes, DeepSpeed states, lens activations


def is_uri(location: str | Path) -> bool:
    """Whether ``location`` names a remote filesystem (``s3://``, ``gs://``, ...), not a local path."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def staging_dir(uri: str) -> Path:
    """The local working copy of the run directory at ``uri`` (the same folder for the same URI)."""
    uri = uri.rstrip("/")
    root = Path(os.environ.get("AIME_STAGING_DIR") or Path(tempfile.gettempdir()) / "aime-staging")
    digest = hashlib.sha256(uri.encode()).hexdigest()[:8]
    return root / f"{uri.rsplit('/', 1)[-1]}-{digest}"


def start_staging(uri: str) -> Path:
    """A staging folder for the run directory at ``uri``, marked with the URI it mirrors."""
    local = staging_dir(uri)
    local.mkdir(parents=True, exist_ok=True)
    (local / MARKER).write_text(uri.rstrip("/") + "\n")
    return local


def remote_of(run_dir: str | Path) -> str | None:
    """The URI a staging folder mirrors, or None for an ordinary local run directory."""
    marker = Path(run_dir) / MARKER
    return marker.read_text().strip() if marker.is_file() else None


def staged_uri(path: str | Path) -> str | None:
    """The URI of a file or folder inside a staging folder (what other nodes read), else None."""
    path = Path(path).resolve()
    for folder in (path, *path.parents):
        remote = remote_of(folder)
        if remote is not None:
            relative = path.relative_to(folder).as_posix()
            return remote if relative == "." else f"{remote}/{relative}"
    return None


def shared_location(path: str | Path) -> str:
    """What a process on any node reads for ``path``: its URI when it lies in a staging folder (a run
    on shared storage), a URI as it is, else the absolute path."""
    if is_uri(path):
        return str(path)
    return staged_uri(path) or str(Path(path).resolve())


def as_uri(remote: str, fs_path: str) -> str:
    """A path within ``remote``'s filesystem (as Ray Train reports it) as a URI of that filesystem."""
    return f"{remote.split('://', 1)[0]}://{fs_path.lstrip('/')}"


def push(run_dir: str | Path, skip: Collection[str] = NOT_PUSHED, only: Collection[str] | None = None) -> int:
    """Upload a staging folder's files (each atomically) to the URI it mirrors; returns the count.
    ``only``: just these files (paths relative to the folder), for a command that wrote them into a
    copy it otherwise only read. An ordinary local run directory is left alone (0)."""
    remote = remote_of(run_dir)
    if remote is None:
        return 0
    fs, root = resolve_filesystem(remote)
    count = 0
    for file in sorted(Path(run_dir).rglob("*")):
        relative = file.relative_to(run_dir)
        if not file.is_file() or file.name == MARKER or relative.parts[0] in skip:
            continue
        if only is not None and relative.as_posix() not in only:
            continue
        atomic_write_bytes(f"{root}/{relative.as_posix()}", file.read_bytes(), fs=fs)
        count += 1
    return count


def pull(uri: str, skip: Collection[str] = NOT_PULLED) -> Path:
    """The run directory at ``uri`` in its staging folder: every file except episodes and DeepSpeed
    states, downloaded when missing or of another size. Returns the staging folder."""
    fs, root = resolve_filesystem(uri.rstrip("/"))
    if fs.get_file_info(root).type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"{uri} does not exist")
    local = start_staging(uri)
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        relative = info.path[len(root) :].lstrip("/")
        if info.type != pafs.FileType.File or any(part in skip for part in relative.split("/")):
            continue
        target = local / relative
        if target.is_file() and target.stat().st_size == info.size:
            continue
        atomic_write(target, partial(_download, fs, info.path))
    return local


def _download(fs: pafs.FileSystem, path: str, stream: IO[bytes]) -> None:
    with fs.open_input_stream(path) as source:
        shutil.copyfileobj(source, stream)


@contextmanager
def private_staging() -> Iterator[Path]:
    """Pulls inside the block go to a staging root of this process's own, removed after it: an
    actor loading a model from shared storage never writes into (or later deletes) the staging
    folder a driver on the same node works in, and leaves nothing behind on its node."""
    root = tempfile.mkdtemp(prefix="aime-private-staging-")
    before = os.environ.get("AIME_STAGING_DIR")
    os.environ["AIME_STAGING_DIR"] = root
    try:
        yield Path(root)
    finally:
        if before is None:
            os.environ.pop("AIME_STAGING_DIR", None)
        else:
            os.environ["AIME_STAGING_DIR"] = before
        shutil.rmtree(root, ignore_errors=True)


def drop(run_dir: str | Path) -> None:
    """Remove a staging folder that was only read (nothing is pushed back); a local run directory
    stays. Pushing a read-only copy could overwrite what a live run wrote there since the pull."""
    if remote_of(run_dir) is not None:
        shutil.rmtree(run_dir, ignore_errors=True)


def finish(run_dir: str | Path) -> None:
    """At the end of a command: push a staging folder and remove it (a local run directory stays)."""
    if remote_of(run_dir) is None:
        return
    push(run_dir)
    shutil.rmtree(run_dir, ignore_errors=True)
