"""Importing offline datasets (DMC-VB TFRecords, Dreamer npz) into the replay store. See README.md."""

from aime.replay.importers.dmcvb import DmcvbImporter
from aime.replay.importers.npz import NpzImporter
from aime.replay.importers.runner import ImportSummary, import_file, run_import
from aime.replay.importers.sink import FileReport, SkippedRecord, WriteSettings

__all__ = [
    "DmcvbImporter",
    "FileReport",
    "ImportSummary",
    "NpzImporter",
    "SkippedRecord",
    "WriteSettings",
    "import_file",
    "run_import",
]
