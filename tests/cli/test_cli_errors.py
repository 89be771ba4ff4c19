"""How the CLI reports failures: one line by default, the traceback with -v."""

from __future__ import annotations

import json

from aime.cli.main import main
from aime.train.driver import complete_records


def test_an_error_is_one_line_and_minus_v_adds_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "no-such-run")
    assert main(["eval", missing]) == 2
    err = capsys.readouterr().err
    assert "is not a directory" in err and "Traceback" not in err and "run with -v" in err
    assert main(["-v", "eval", missing]) == 2
    err = capsys.readouterr().err
    assert "is not a directory" in err and "Traceback (most recent call last)" in err


def test_the_progress_reader_leaves_a_half_written_line_for_later(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 1}) + "\n" + '{"step": 2, "train/to')
    records, seen = complete_records(path, 0)
    assert records == [{"step": 1}] and seen == 1
    path.write_text(json.dumps({"step": 1}) + "\n" + json.dumps({"step": 2}) + "\n")
    records, seen = complete_records(path, seen)
    assert records == [{"step": 2}] and seen == 2
    assert complete_records(tmp_path / "none.jsonl", 0) == ([], 0)
