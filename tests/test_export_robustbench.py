"""RobustBench export: refusals of non-standard evaluations, reproduction labels, <Name><Year><Word> names."""

from __future__ import annotations

import datetime
import json

import pytest
from fixtures_runs import write_fixture_run

from robustbench_aux.cli import main
from robustbench_aux.errors import UserError
from robustbench_aux.report.export import MODEL_ID, export_robustbench

YEAR = datetime.datetime.now(datetime.UTC).year


def _run(
    root, label="auxiliary", arch="resnet18", seed=0, n=10_000, provenance="published", dataset="cifar100"
):
    return write_fixture_run(root, label, arch, seed, n=n, provenance=provenance, dataset=dataset)


@pytest.fixture(scope="module")
def standard(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("std"))


def test_standard_reproduction_is_exported_as_a_reproduction(standard, tmp_path):
    paths = export_robustbench([standard], tmp_path / "o")
    assert sorted(p.name for p in paths) == [
        "Zhang2020Auxiliary_Repro_ResNet18.json",
        "unaggregated_results.csv",
    ]
    entry = json.loads((tmp_path / "o" / "Zhang2020Auxiliary_Repro_ResNet18.json").read_text())
    assert "nonstandard" not in entry and "NON-STANDARD" not in entry["footnote"]
    assert "reproduction" in entry["name"] and entry["authors"] == ""  # never the paper's authors
    assert entry["footnote"].startswith("Reproduction of Zhang et al. (CVPR 2020) with robustbench-aux")
    assert (
        entry["link"] == "https://doi.org/10.1109/CVPR42600.2020.00045" and "reproduction" in entry["venue"]
    )
    entry = json.loads(export_robustbench([standard], tmp_path / "p", authors="A. Person")[0].read_text())
    assert entry["authors"] == "A. Person"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"provenance": "generated"}, "generated CIFAR-C, not the published files"),
        ({"n": 500}, "500 images per block, not 10,000"),
        ({"dataset": "synthetic100", "n": 500}, "dataset synthetic100"),
    ],
)
def test_nonstandard_is_refused_unless_allowed_and_then_marked(tmp_path, capsys, kwargs, reason):
    run = _run(tmp_path / "runs", **kwargs)
    with pytest.raises(UserError, match="not a standard RobustBench evaluation"):
        export_robustbench([run], tmp_path / "o")
    assert not (tmp_path / "o").exists()  # nothing written
    assert main(["export", str(run), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: run auxiliary-resnet18-s0 is not a standard") and reason in err
    assert err.count("\n") == 1 and "--allow-nonstandard" in err
    assert main(["export", str(run), "-o", str(tmp_path / "o"), "--allow-nonstandard"]) == 0
    (path,) = (tmp_path / "o").glob("*.json")
    entry = json.loads(path.read_text())
    assert any(reason in r for r in entry["nonstandard"]) and entry["footnote"].startswith("NON-STANDARD")


def test_file_names_follow_robustbench_style(tmp_path):
    runs = [
        _run(tmp_path, "plain", n=10),
        _run(tmp_path, "per_corruption[noise]", "resnet50", n=10),
        _run(tmp_path, "auxiliary[no_sbn]", n=10),
        _run(tmp_path, "augmix", "resnet50", n=10),
        _run(tmp_path, "auxiliary", seed=0, n=10),
        _run(tmp_path, "auxiliary", seed=1, n=10),
    ]
    paths = export_robustbench(runs, tmp_path / "o", allow_nonstandard=True)
    names = [p.stem for p in paths if p.suffix == ".json"]
    assert names == [
        f"RobustbenchAux{YEAR}Plain_ResNet18",
        f"RobustbenchAux{YEAR}PerCorruptionNoise_ResNet50",
        "Zhang2020AuxiliaryNoSbn_Repro_ResNet18",
        "Hendrycks2020AugMix_Repro_ResNet50",
        "Zhang2020Auxiliary_Repro_ResNet18_s0",
        "Zhang2020Auxiliary_Repro_ResNet18_s1",
    ]
    assert all(MODEL_ID.match(n) for n in names)
    augmix = json.loads((tmp_path / "o" / "Hendrycks2020AugMix_Repro_ResNet50.json").read_text())
    assert "Reproduction of Hendrycks et al. (ICLR 2020)" in augmix["footnote"]


def test_model_id_override(standard, tmp_path, capsys):
    assert main(["export", str(standard), "-o", str(tmp_path / "o"), "--model-id", "Doe2025Aux_R18"]) == 0
    assert (tmp_path / "o" / "Doe2025Aux_R18.json").is_file()
    assert main(["export", str(standard), "-o", str(tmp_path / "x"), "--model-id", "my model"]) == 2
    assert "<Name><Year><Word>" in capsys.readouterr().err and not (tmp_path / "x").exists()
