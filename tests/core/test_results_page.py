"""scripts/results_page.py, which writes README's comparison tables and NSE CDFs: medians over
the basins with a finite NSE, the arid/humid split by CAMELS aridity, --basins-of and --subset,
and clear errors for a malformed model argument."""
import importlib.util
from pathlib import Path

import pytest

from delta_core.data.camels import SAMPLE_DIR
from conftest import REPO

SCRIPT = REPO / "scripts" / "results_page.py"
#: the package's sample basins; 06224000 is the only arid one (aridity 1.75)
NSE = {"01022500": 0.8, "03439000": 0.6, "06224000": 0.1, "08023080": float("nan"),
       "12010000": 0.7}


@pytest.fixture(scope="module")
def page():
    spec = importlib.util.spec_from_file_location("results_page", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _write(path: Path, idcol: str = "gauge_id", prefix: str = "", scale: float = 1.0) -> str:
    rows = [f"{idcol},{prefix}nse,{prefix}kge"]
    rows += [f"{g},{v * scale},{v / 2}" for g, v in NSE.items()]
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def _rows(md: str) -> dict[str, list[str]]:
    return {c[0]: c[1:] for c in ([x.strip() for x in line.strip("|").split("|")]
                                  for line in md.splitlines()[2:])}


def test_table_split_and_figure(page, tmp_path, capsys):
    a = _write(tmp_path / "a.csv")
    b = _write(tmp_path / "b.csv", idcol="basin", prefix="dds_", scale=0.5)
    page.main(["--data", str(SAMPLE_DIR), "--out", str(tmp_path / "cmp"), f"A={a}",
               f"B={b}#dds_"])
    rows = _rows((tmp_path / "cmp.md").read_text())
    # the NaN basin is left out: medians of 0.8, 0.6, 0.1, 0.7
    assert rows["A"][:3] == ["4", "0.650", "0.325"]
    assert rows["A"][3:] == ["0", "0.100 / 0.050 (1)", "0.700 / 0.350 (3)"]
    assert rows["B"][:3] == ["4", "0.325", "0.325"]
    assert (tmp_path / "cmp.png").stat().st_size > 10_000
    assert "wrote" in capsys.readouterr().out


def test_basins_of_and_subset(page, tmp_path):
    a = _write(tmp_path / "a.csv")
    (tmp_path / "two.csv").write_text("gauge_id\n01022500\n06224000\n")
    (tmp_path / "one.csv").write_text("basin\n12010000\n")
    page.main(["--data", str(SAMPLE_DIR), "--out", str(tmp_path / "sel"), f"A={a}",
               "--basins-of", str(tmp_path / "two.csv"), "--basins-of", str(tmp_path / "one.csv")])
    assert _rows((tmp_path / "sel.md").read_text())["A"][:3] == ["3", "0.700", "0.350"]
    page.main(["--data", str(SAMPLE_DIR), "--out", str(tmp_path / "arid"), f"A={a}",
               "--subset", "arid"])
    assert _rows((tmp_path / "arid.md").read_text())["A"] == ["1", "0.100", "0.050", "0"]


def test_basins_of_filter_and_negative_count(page, tmp_path):
    a = _write(tmp_path / "a.csv", scale=-1.0)  # NSE -0.8, -0.6, -0.1, nan, -0.7
    (tmp_path / "folds.csv").write_text("gauge_id,fold\n01022500,0\n06224000,3\n12010000,3\n")
    page.main(["--data", str(SAMPLE_DIR), "--out", str(tmp_path / "f"), f"A={a}",
               "--basins-of", f"{tmp_path / 'folds.csv'}#fold=3"])
    assert _rows((tmp_path / "f.md").read_text())["A"][:4] == ["2", "-0.400", "0.200", "2"]
    with pytest.raises(SystemExit, match="no column 'group'"):
        page.main(["--data", str(SAMPLE_DIR), "--out", str(tmp_path / "x"), f"A={a}",
                   "--basins-of", f"{tmp_path / 'folds.csv'}#group=3"])
    with pytest.raises(SystemExit, match="no row .* fold = '7'"):
        page.main(["--data", str(SAMPLE_DIR), "--out", str(tmp_path / "x"), f"A={a}",
                   "--basins-of", f"{tmp_path / 'folds.csv'}#fold=7"])
    with pytest.raises(SystemExit, match="COLUMN=VALUE"):
        page.main(["--data", str(SAMPLE_DIR), "--out", str(tmp_path / "x"), f"A={a}",
                   "--basins-of", f"{tmp_path / 'folds.csv'}#fold"])


def test_bad_model_arguments_name_the_problem(page, tmp_path):
    a = _write(tmp_path / "a.csv")
    with pytest.raises(SystemExit, match="LABEL=CSV"):
        page.main(["--data", str(SAMPLE_DIR), "--out", str(tmp_path / "x"), a])
    with pytest.raises(SystemExit, match="no column 'dds_nse'"):
        page.main(["--data", str(SAMPLE_DIR), "--out", str(tmp_path / "x"), f"A={a}#dds_"])
