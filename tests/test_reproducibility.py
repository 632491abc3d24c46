"""cohortflow.reproducibility: how two runs' outputs are compared, on hand-made folders."""

from __future__ import annotations

import json
from pathlib import Path

from cohortflow.reproducibility import compare_runs


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_each_kind_of_difference_lands_in_its_own_list(tmp_path):
    same = {"results/a.tsv": "x\ty\n1\t2\n", "resources/r.txt": "r"}
    a = _write(tmp_path / "a", {
        **same,
        "results/side.json": json.dumps({"value": 1.5, "Seconds": 3.1, "nested": {"seconds": 1}}),
        "results/history.tsv": "epoch\tloss\tseconds\n1\t0.5\t0.09\n",
        "results/close.tsv": "v\n0.1000000000001\n",
        "results/far.tsv": "v\n0.1\n",
        "results/image.png": "PNG-a",
        "results/tool.log": "started at 10:00",
        "results/only_a.txt": "a",
    })  # fmt: skip
    b = _write(tmp_path / "b", {
        **same,
        "results/side.json": json.dumps({"value": 1.5, "Seconds": 9.9, "nested": {"seconds": 2}}),
        "results/history.tsv": "epoch\tloss\tseconds\n1\t0.5\t0.07\n",
        "results/close.tsv": "v\n0.1\n",
        "results/far.tsv": "v\n0.2\n",
        "results/image.png": "PNG-b",
        "results/tool.log": "started at 11:00",
    })  # fmt: skip
    result = compare_runs(a, b)
    assert sorted(result.identical) == ["resources/r.txt", "results/a.tsv"]
    assert set(result.equal_without_volatile) == {"results/side.json", "results/history.tsv"}
    assert any(r.startswith("column seconds") for r in result.equal_without_volatile[
        "results/history.tsv"])  # fmt: skip
    assert result.numerically_equal == ["results/close.tsv"]
    assert set(result.different) == {"results/far.tsv", "results/image.png"}
    assert list(result.skipped) == ["results/tool.log"]
    assert result.only_in_a == ["results/only_a.txt"] and not result.only_in_b
    assert not result.ok
    summary = result.summary()
    assert "results/far.tsv" in summary and "seconds" in summary


def test_a_result_value_that_differs_is_not_hidden_by_a_timing_column(tmp_path):
    a = _write(tmp_path / "a", {"results/h.tsv": "loss\tseconds\n0.5\t1\n"})
    b = _write(tmp_path / "b", {"results/h.tsv": "loss\tseconds\n0.6\t2\n"})
    result = compare_runs(a, b)
    assert list(result.different) == ["results/h.tsv"]
