"""Report CSVs: text a spreadsheet would read as a formula is written as text; numbers stay numbers."""

import io

import pandas as pd
import pytest

from robustbench_aux.report.csvcells import safe_cell, to_csv


@pytest.mark.parametrize(
    "cell, written",
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-0.25", "-0.25"),  # a number written as text is read as that number
        ("+3", "+3"),
        ("-1e-05", "-1e-05"),
        ("-inf", "-inf"),
        ("plain-resnet18-s0", "plain-resnet18-s0"),
        ("–", "–"),  # the report's placeholder (an en dash) is not a formula
        (-0.5, -0.5),
        (None, None),
    ],
)
def test_safe_cell(cell, written):
    assert safe_cell(cell) == written


def test_csv_keeps_numeric_columns_numeric_and_quotes_formula_text():
    frame = pd.DataFrame(
        {"run_id": ["=1+1", "ok"], "delta": [-0.5, 0.25], "label": ["-x", "-1"]},
        index=pd.Index(["@a", "b"], name="=idx"),
    )
    back = pd.read_csv(io.StringIO(to_csv(frame, float_format="%.6f")), index_col=0)
    assert back["delta"].tolist() == [-0.5, 0.25] and back["delta"].dtype == float
    assert back["run_id"].tolist() == ["'=1+1", "ok"] and back["label"].tolist() == ["'-x", "-1"]
    assert back.index.tolist() == ["'@a", "b"] and back.index.name == "'=idx"
    assert frame["run_id"].tolist() == ["=1+1", "ok"]  # the frame itself is not changed


def test_report_and_export_write_through_it(tmp_path):
    from robustbench_aux.report import export, render

    written: list[str] = []
    render._write_csv(tmp_path, "t.csv", pd.DataFrame({"run_id": ["=evil()"], "x": [-1.0]}), written)
    assert (tmp_path / "t.csv").read_text().splitlines() == ["run_id,x", "'=evil(),-1.000000"]
    assert "to_csv(table" in open(export.__file__).read()  # export's unaggregated table, too
