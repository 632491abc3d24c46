"""The PLINK runner: resources passed on, errors carried, and the reference outputs reproduced."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_DATA, needs_plink

from cohortflow.genotype_qc.plink import PlinkError, PlinkSession, read_table

HAPMAP = SHARED_DATA / "genotype" / "plinkqc_hapmap"
EXPECTED = HAPMAP / "expected_plink_outputs"


@needs_plink
def test_failed_run_carries_plinks_error_line(tmp_path):
    session = PlinkSession(threads=1, memory_mb=500)
    with pytest.raises(PlinkError, match=r"(?s)plink2 --bfile .*missing.* failed .*Error") as err:
        session.run("plink2", ["--bfile", str(tmp_path / "missing"), "--missing"], tmp_path / "o")
    assert session.runs == []
    # Quoted in full: PLINK's lines after its "Error:" line are there too.
    assert "For more info" in str(err.value) and err.value.log == tmp_path / "o.log"


@needs_plink
@pytest.mark.shared_data
@pytest.mark.skipif(not EXPECTED.is_dir(), reason="../shared/data absent")
def test_reference_missingness_sexcheck_and_heterozygosity_reproduced(tmp_path):
    """The shipped reference covers 180 of the 200 samples: keep those, then PLINK 1.9 through
    the runner gives the same per-sample and per-variant missingness, sex-check F and status
    (7 problems) and heterozygosity F (the reference's het uses all SNPs)."""
    reference = {name: read_table(EXPECTED / f"data.{name}")
                 for name in ("imiss", "lmiss", "sexcheck", "het")}  # fmt: skip
    keep = tmp_path / "keep.txt"
    reference["imiss"][["FID", "IID"]].to_csv(keep, sep=" ", header=False, index=False)
    session = PlinkSession(threads=2, memory_mb=1000)
    base = ["--bfile", str(HAPMAP / "data"), "--keep", str(keep)]
    session.run("plink1.9", [*base, "--missing"], tmp_path / "m")
    session.run("plink1.9", [*base, "--check-sex"], tmp_path / "s")
    session.run("plink1.9", [*base, "--het"], tmp_path / "h")
    ours = {
        "imiss": read_table(tmp_path / "m.imiss"),
        "lmiss": read_table(tmp_path / "m.lmiss"),
        "sexcheck": read_table(tmp_path / "s.sexcheck"),
        "het": read_table(tmp_path / "h.het"),
    }
    for name, key in (("imiss", "IID"), ("lmiss", "SNP"), ("sexcheck", "IID"), ("het", "IID")):
        a = ours[name].set_index(key).sort_index()
        b = reference[name].set_index(key).sort_index()
        assert list(a.index) == list(b.index), name
        for column in b.columns:
            if b[column].dtype.kind in "fi":
                assert np.allclose(a[column], b[column], atol=5e-5, rtol=0), (name, column)
            else:
                assert (a[column] == b[column]).all(), (name, column)
    assert (ours["sexcheck"]["STATUS"] == "PROBLEM").sum() == 7
    assert [r.engine for r in session.runs] == ["plink1.9"] * 3
    assert all(r.log.is_file() and "--threads" not in r.args for r in session.runs)
    assert "--threads 2" in (tmp_path / "m.log").read_text()
