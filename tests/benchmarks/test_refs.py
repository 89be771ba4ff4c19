"""benchmarks/refs.py: a ref checked out as its own git worktree (and removed), the runs' PYTHONPATH
that puts the checkout's aime first, and the per-ref spread with the ratio of the medians."""

import os

from benchmark_scripts import load_benchmark

refs = load_benchmark("refs")


def test_a_ref_is_its_own_worktree_and_the_working_tree_is_the_repository(tmp_path):
    assert refs.checkout(refs.WORKTREE, tmp_path) == refs.REPO
    head = refs.checkout("HEAD", tmp_path)
    try:
        assert (head / "aime" / "__init__.py").exists() and head.parent == tmp_path
        first, *rest = refs.environment(head)["PYTHONPATH"].split(os.pathsep)
        assert first == str(head) and str(refs.REPO) not in rest
        assert refs.describe("HEAD").split()[0] in refs.describe("HEAD~0")
    finally:
        refs.remove(head)
    assert not head.exists()
    refs.remove(refs.REPO)  # the repository itself is never removed
    assert (refs.REPO / "aime").is_dir()


def test_spread_per_ref_and_figure_and_the_ratio_of_the_second_to_the_first():
    runs = {
        "old": [{"s": 10.0, "n": 4}, {"s": 12.0, "n": 4}, {"s": 11.0, "n": 4}],
        "new": [{"s": 5.0, "n": 4}],
    }
    summary = refs.summarise(runs)
    assert summary["by_ref"]["old"]["s"] == {
        "median": 11.0,
        "min": 10.0,
        "max": 12.0,
        "runs": [10.0, 12.0, 11.0],
    }
    assert summary["ratio_of_medians"] == {"s": 0.455, "n": 1.0}
    assert refs.summarise({"only": runs["old"]})["ratio_of_medians"] == {}


def test_alternate_runs_each_ref_once_untimed_then_in_turn_and_removes_its_checkouts(capfd):
    calls = []

    def run(source, scratch):
        calls.append((source, scratch))
        assert scratch.is_dir() and (source / "aime").is_dir()
        return {"n": len(calls)}

    runs = refs.alternate(["HEAD", refs.WORKTREE], run, repeats=2)
    assert runs == {"HEAD": [{"n": 3}, {"n": 5}], refs.WORKTREE: [{"n": 4}, {"n": 6}]}
    head, scratch = calls[0]
    assert [c[0] for c in calls] == [head, refs.REPO] * 3 and head != refs.REPO
    assert not head.exists() and not scratch.exists()
    assert capfd.readouterr().out == ""  # a benchmark's stdout is its JSON alone (git's lines go to stderr)
