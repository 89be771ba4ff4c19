"""Where a process's import seconds went, from Python's ``-X importtime`` log (prints JSON).

    PYTHONPROFILEIMPORTTIME=1 aime train ...        # every Ray worker logs its imports to its stderr
    python benchmarks/import_times.py /tmp/ray/session_latest/logs/worker-*.err [--top 25] \
        [--match RayTrainWorker]

For each log that holds import timings (and, with ``--match``, a line containing that text, such as
the actor's class name Ray prints first): the total import seconds, the seconds per distribution
(each module's own time summed by its first dotted name: ``torch``, ``deepspeed``, ``ray``, ...), and
the slowest top-level imports (cumulative: a module with everything it imported). The format is
CPython's: ``import time: self [us] | cumulative | imported package``, nesting shown by indentation.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


def parse(lines: list[str]) -> list[tuple[int, str, float, float]]:
    """(depth, module, own seconds, cumulative seconds) per import, in the order they ended."""
    out = []
    for line in lines:
        match = LINE.match(line)
        if match:
            depth = (len(match.group(3)) - 1) // 2  # CPython indents two spaces per level after one
            out.append((depth, match.group(4), int(match.group(1)) / 1e6, int(match.group(2)) / 1e6))
    return out


def summarise(path: Path, top: int) -> dict[str, Any]:
    imports = parse(path.read_text(errors="replace").splitlines())
    by_package: dict[str, float] = {}
    for _, name, own, _ in imports:
        root = name.split(".")[0]
        by_package[root] = by_package.get(root, 0.0) + own
    outermost = sorted(((n, total) for depth, n, _, total in imports if depth == 0), key=lambda i: -i[1])
    return {
        "log": str(path),
        "import_seconds": round(sum(own for _, _, own, _ in imports), 2),
        "by_package": {k: round(v, 3) for k, v in sorted(by_package.items(), key=lambda i: -i[1])[:top]},
        "slowest_top_level": [{"module": n, "seconds": round(s, 3)} for n, s in outermost[:top]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("logs", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", help="only logs with a line containing this text")
    args = parser.parse_args()
    results = []
    for path in args.logs:
        text = path.read_text(errors="replace")
        if "import time:" in text and (args.match is None or args.match in text):
            results.append(summarise(path, args.top))
    results.sort(key=lambda r: -r["import_seconds"])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
