"""The Python-level filters: warnings, logging handlers, and the worker output Ray forwards."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from typing import Any

from aime.console.noise import NOISE, filtering, in_known_blocks, keep

_WRAPPED = "_aime_drops_noise"


class _DropKnownNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if NOISE.search(message):
            keep(message)
            return False
        return True


def quiet_known_noise() -> None:
    """Filter the known messages out of this process's warnings and out of every logging handler
    that exists now (Ray's and Ray Data's handlers exist once they are imported: call again then).
    Idempotent; imports nothing."""
    if not filtering():
        return
    deprecated = r"`torch\.distributed\.\w+` is deprecated"
    warnings.filterwarnings("ignore", message=deprecated, category=FutureWarning)
    # Inductor, compiling the rollout on a GPU: a multi-line performance note about its own choice.
    softmax = r"\s*Online softmax is disabled on the fly"
    warnings.filterwarnings("ignore", message=softmax, category=UserWarning)
    loggers = [logging.getLogger(), logging.getLogger("absl"), logging.getLogger("DeepSpeed")]
    loggers += [
        logger
        for name, logger in list(logging.root.manager.loggerDict.items())
        if isinstance(logger, logging.Logger) and name.split(".")[0] == "ray" and logger.handlers
    ]
    for logger in loggers:
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, _DropKnownNoise) for f in target.filters):
                target.addFilter(_DropKnownNoise())


def drop_forwarded_noise() -> None:
    """Drop known-noise lines from what Ray prints in this driver for other processes (call after
    ``ray.init``): worker output (the log dispatcher's handlers) and the raylet's messages (printed
    through ``print_to_stdstream``). Ray has no public hook for this: where its internals differ,
    nothing changes."""
    if not filtering():
        return
    try:
        from ray._private import worker
        from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
    except ImportError:
        return
    with dispatcher._lock:
        dispatcher.handlers = [
            (name, handler if getattr(handler, _WRAPPED, False) else _dropping_noise(handler))
            for name, handler in dispatcher.handlers
        ]
    printer = getattr(worker, "print_to_stdstream", None)
    if callable(printer) and not getattr(printer, _WRAPPED, False):
        wrapped = _dropping_noise(lambda batch, **kwargs: printer(batch, **kwargs))
        worker.print_to_stdstream = wrapped  # type: ignore[attr-defined]


def _dropping_noise(handler: Callable[..., None]) -> Callable[..., None]:
    def handle(batch: dict[str, Any], **kwargs: Any) -> None:
        lines = []
        raw = list(batch.get("lines", []))
        for line, in_block in zip(raw, in_known_blocks(raw), strict=True):
            if in_block or NOISE.search(line):
                keep(f"({batch.get('pid', '?')}) {line}")
            else:
                lines.append(line)
        if lines:
            handler({**batch, "lines": lines}, **kwargs)

    setattr(handle, _WRAPPED, True)
    return handle
