"""A lens-pack registry on any pyarrow filesystem (a local folder, s3://, gs://, hdfs://).

    <registry>/<name>/v0001/pack.json, lenses.safetensors[, lens_eval.json, f1_heatmap.png]
    push(pack, name, bf16) --next version, weights first, pack.json last (atomic_write)--> vNNNN
    entries() <-- every <name>/v*/pack.json;  pull(name, version) --> a local pack folder;  remove(...)

A version is complete when its pack.json exists (written last); listings skip incomplete ones. A bf16
push stores the weights in bfloat16 (half the bytes); loading casts nothing back: the bank runs in the
dtype it was stored in.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from aime.lenses.pack import PACK_JSON, WEIGHTS, LensPack
from aime.storage import atomic_write_bytes, resolve_filesystem

EXTRAS = ("lens_eval.json", "f1_heatmap.png")  # copied along when the pack has them
VERSION = re.compile(r"^v(\d{4,})$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Entry:
    name: str
    version: int
    info: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        lenses = self.info.get("lenses", [])
        return {
            "name": self.name,
            "version": self.version,
            "config_hash": self.info["world_model"]["config_hash"],
            "lenses": len(lenses),
            "graduated": sum(bool(lens.get("graduated")) for lens in lenses),
            "dtype": self.info.get("dtype", "float32"),
            "created_at": self.info.get("created_at"),
        }


class Registry:
    def __init__(self, uri: str | Path):
        self.uri = str(uri)
        self.fs, self.root = resolve_filesystem(uri)

    def push(self, pack_dir: str | Path, name: str | None = None, *, bf16: bool = False) -> Entry:
        """Store ``pack_dir`` as the next version of ``name`` (default: the pack's name)."""
        pack = LensPack.load(pack_dir)
        name = name or str(pack.info["name"])
        if not NAME.match(name):
            raise ValueError(f"registry name {name!r}: letters, digits, '.', '_' and '-' only")
        version = max(self.versions(name), default=0) + 1
        target = f"{self.root}/{name}/v{version:04d}"
        for extra in EXTRAS:  # before the pack: pack.json last marks the version complete
            if (Path(pack_dir) / extra).is_file():
                atomic_write_bytes(f"{target}/{extra}", (Path(pack_dir) / extra).read_bytes(), fs=self.fs)
        pack.save(target, dtype="bfloat16" if bf16 else "float32", fs=self.fs)
        return Entry(name, version, self._info(name, version))

    def entries(self, name: str | None = None) -> list[Entry]:
        names = [name] if name else self._children(self.root)
        return [Entry(n, v, self._info(n, v)) for n in sorted(names) for v in self.versions(n)]

    def versions(self, name: str) -> list[int]:
        """The complete versions of ``name``, oldest first."""
        found = []
        for child in self._children(f"{self.root}/{name}"):
            match = VERSION.match(child)
            info = self.fs.get_file_info(f"{self.root}/{name}/{child}/{PACK_JSON}")
            if match and info.type == pafs.FileType.File:
                found.append(int(match.group(1)))
        return sorted(found)

    def pull(self, name: str, out: str | Path, version: int | None = None) -> Entry:
        """Copy a version (default: the newest) into the local folder ``out``; pack.json last."""
        version = version or self._latest(name)
        source = f"{self.root}/{name}/v{version:04d}"
        for file in (*EXTRAS, WEIGHTS, PACK_JSON):
            if self.fs.get_file_info(f"{source}/{file}").type == pafs.FileType.File:
                with self.fs.open_input_stream(f"{source}/{file}") as stream:
                    atomic_write_bytes(Path(out) / file, stream.read())
        return Entry(name, version, self._info(name, version))

    def remove(self, name: str, version: int | None = None) -> list[int]:
        """Delete one version, or every version of ``name``; returns the versions removed."""
        versions = [version] if version else self.versions(name)
        if not versions or (version and version not in self.versions(name)):
            raise FileNotFoundError(f"{self.uri} has no {name}" + (f" v{version}" if version else ""))
        for v in versions:
            self.fs.delete_dir(f"{self.root}/{name}/v{v:04d}")
        if not self._children(f"{self.root}/{name}"):
            self.fs.delete_dir(f"{self.root}/{name}")
        return versions

    def _latest(self, name: str) -> int:
        versions = self.versions(name)
        if not versions:
            known = ", ".join(sorted({e.name for e in self.entries()})) or "none"
            raise FileNotFoundError(f"{self.uri} has no lens pack {name!r}; it has: {known}")
        return versions[-1]

    def _info(self, name: str, version: int) -> dict[str, Any]:
        with self.fs.open_input_stream(f"{self.root}/{name}/v{version:04d}/{PACK_JSON}") as stream:
            return dict(json.load(io.BytesIO(stream.read())))

    def _children(self, path: str) -> list[str]:
        if self.fs.get_file_info(path).type != pafs.FileType.Directory:
            return []
        selector = pafs.FileSelector(path, recursive=False)
        infos = self.fs.get_file_info(selector)
        return sorted(
            i.base_name
            for i in infos
            if i.type == pafs.FileType.Directory and not i.base_name.startswith(".")
        )


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name`` or ``name:version`` (``name:3`` or ``name:v0003``)."""
    name, _, version = ref.partition(":")
    if not version:
        return name, None
    digits = version.removeprefix("v")
    if not digits.isdigit():
        raise ValueError(f"{ref!r}: a version is a number, as in {name}:3")
    return name, int(digits)
