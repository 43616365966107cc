"""`evaluate --model`: torchvision / user factories, torch.export and TorchScript files, robustbench names."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest
import torch
import torchvision
from fixtures_runs import TinyEvalCNN, write_cifar_c

from robustbench_aux.cli import main
from robustbench_aux.evaluation import Normalized, evaluate, read_results
from robustbench_aux.evaluation.external import NAMED_STATS, parse_normalization

# torch.jit is deprecated in favour of torch.export, but TorchScript files are still what many people have
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")

N = 40
CORR = ("gaussian_noise", "fog")


@pytest.fixture(scope="module")
def cifar_c(cifar10, tmp_path_factory):
    return write_cifar_c(tmp_path_factory.mktemp("c10c"), cifar10.test_x[:N], cifar10.test_y[:N], CORR)


def _args(cifar10_root, cifar_c, out, *extra):
    return [
        "evaluate",
        *extra,
        "--dataset",
        "cifar10",
        "--data",
        str(cifar10_root),
        "--corruptions",
        str(cifar_c),
        "--n",
        str(N),
        "--device",
        "cpu",
        "--out",
        str(out),
    ]


def _direct(model, cifar10, cifar_c, normalization=None):
    """The same evaluation through the Python API on the in-memory model (the reference)."""
    model = model.eval()
    return evaluate(
        model,
        (cifar10.test_x[:N], cifar10.test_y[:N]),
        cifar_c,
        n=N,
        device="cpu",
        normalization=normalization,
    ).table.set_index(["corruption", "severity"])["acc"]


def _accs(out):
    table, summary = read_results(out / "eval")
    return table.set_index(["corruption", "severity"])["acc"], summary


def test_torchvision_factory_with_weights_and_normalization(tmp_path, cifar10, cifar10_root, cifar_c, capsys):
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    for m in model.modules():  # non-trivial BN statistics: eval mode must be what is measured
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "w.pth")
    out = tmp_path / "tv"
    argv = _args(
        cifar10_root,
        cifar_c,
        out,
        "--model",
        "torchvision.models:resnet18",
        "--model-arg",
        "num_classes=10",
        "--weights",
        str(tmp_path / "w.pth"),
        "--normalize",
        "cifar10",
    )
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith("resnet18  (external, resnet18, cifar10)") and "clean_acc" in stdout
    got, summary = _accs(out)
    want = _direct(model, cifar10, cifar_c, NAMED_STATS["cifar10"])
    assert got.sort_index().tolist() == pytest.approx(want.sort_index().tolist())
    assert len(got) == 1 + 2 * 5
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "external" and config["model"]["kind"] == "factory"
    assert config["model"]["kwargs"] == {"num_classes": 10} and len(config["model"]["weights_sha256"]) == 64
    assert config["normalization"]["mean"] == list(NAMED_STATS["cifar10"][0])
    assert summary["provenance"]["model"]["factory"] == "torchvision.models:resnet18"
    cal = summary["calibration"]  # --model records calibration too
    assert cal["blocks_recorded"] == 11 and 0 <= cal["ece"]["clean"] <= 1 and cal["nll"]["mean_15"] > 0
    assert "calibration  clean / mean over the 15" in stdout
    # a rerun finds every block finished; a different model in the same folder is refused
    assert main(argv) == 0
    capsys.readouterr()
    assert (
        main(
            _args(
                cifar10_root,
                cifar_c,
                out,
                "--model",
                "torchvision.models:resnet18",
                "--model-arg",
                "num_classes=10",
                "--normalize",
                "cifar10",
            )
        )
        == 2
    )
    assert "holds results of a different evaluation" in capsys.readouterr().err


def test_users_own_factory_module(tmp_path, cifar10, cifar10_root, cifar_c, monkeypatch):
    """A factory from the user's own package (module:Class.attribute)."""
    pkg = tmp_path / "mymodels"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "zoo.py").write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self, classes=10):\n"
        "        super().__init__()\n"
        "        torch.manual_seed(1)\n"
        "        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.BatchNorm2d(8),\n"
        "            torch.nn.Dropout(0.5), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),\n"
        "            torch.nn.Linear(8, classes))\n"
        "    def forward(self, x):\n"
        "        return self.body(x)\n"
        "class Builders:\n"
        "    small = Net\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "own"
    assert (
        main(_args(cifar10_root, cifar_c, out, "--model", "mymodels.zoo:Builders.small", "--name", "mine"))
        == 0
    )
    got, summary = _accs(out)
    from mymodels.zoo import Net

    want = _direct(Net(), cifar10, cifar_c)  # dropout off, BN running stats: deterministic in eval mode
    assert got.sort_index().tolist() == pytest.approx(want.sort_index().tolist())
    assert summary["run_id"] == "mine" and summary["arch"] == "small"


def test_timm_factory(tmp_path, cifar10, cifar10_root, cifar_c):
    """A timm constructor through --model with its weights from a file (timm is in the dev extra)."""
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("resnet18", num_classes=10).eval()
    weights = tmp_path / "timm_resnet18.pt"
    torch.save(model.state_dict(), weights)
    out = tmp_path / "timm"
    assert (
        main(
            _args(
                cifar10_root,
                cifar_c,
                out,
                "--model",
                "timm:create_model",
                "--model-arg",
                "model_name='resnet18'",
                "--model-arg",
                "num_classes=10",
                "--weights",
                str(weights),
                "--normalize",
                "cifar10",
            )
        )
        == 0
    )
    got, summary = _accs(out)
    want = _direct(model, cifar10, cifar_c, NAMED_STATS["cifar10"])
    assert got.sort_index().tolist() == pytest.approx(want.sort_index().tolist())
    assert summary["provenance"]["model"]["factory"] == "timm:create_model"


def _tiny():
    torch.manual_seed(0)
    return TinyEvalCNN(10).eval()


def test_torch_export_and_torchscript_files(tmp_path, cifar10, cifar10_root, cifar_c):
    model = _tiny()
    x = torch.rand(4, 3, 32, 32)
    program = torch.export.export(model, (x,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(program, tmp_path / "tiny.pt2")
    torch.jit.save(torch.jit.trace(model, x), tmp_path / "tiny_script.pt")
    want = _direct(model, cifar10, cifar_c).sort_index().tolist()
    for name, kind in (("tiny.pt2", "export"), ("tiny_script.pt", "torchscript")):
        out = tmp_path / name.replace(".", "_")
        assert main(_args(cifar10_root, cifar_c, out, "--model", str(tmp_path / name))) == 0
        got, summary = _accs(out)
        assert got.sort_index().tolist() == pytest.approx(want)
        assert summary["provenance"]["model"]["kind"] == kind


def test_external_runs_go_into_report_and_export(tmp_path, cifar10_root, cifar_c):
    model = _tiny()
    torch.jit.save(torch.jit.trace(model, torch.rand(2, 3, 32, 32)), tmp_path / "a.pt")
    for name in ("a1", "a2"):
        assert (
            main(
                _args(
                    cifar10_root,
                    cifar_c,
                    tmp_path / "runs" / name,
                    "--model",
                    str(tmp_path / "a.pt"),
                    "--name",
                    name,
                )
            )
            == 0
        )
    from robustbench_aux.report.runs import check_comparable, load_runs

    records = load_runs([tmp_path / "runs"])
    assert [r.run_id for r in records] == ["a1", "a2"] and check_comparable(records).dataset == "cifar10"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "torchvision.models:resnet18", "--model-arg", "num_classes=7"], "outputs 7 classes"),
        (["--model", "no_such_module_xyz:f"], "cannot import no_such_module_xyz"),
        (["--model", "torchvision.models:no_such_factory"], "has no attribute 'no_such_factory'"),
        (["--model", "math:sqrt"], "sqrt("),
        (["--model", "json:dumps", "--model-arg", "obj=1"], "returned str, not a torch.nn.Module"),
        (["--model", "torchvision.models:resnet18", "--weights", "missing.pth"], "does not exist"),
        (["--model", "torchvision.models:resnet18", "--normalize", "1,2"], "--normalize '1,2'"),
        (["--model", "robustbench:cifar100/Hendrycks2020AugMix_WRN"], "needs the robustbench package"),
        (["--model", "robustbench:imagenet/x"], "expected robustbench:cifar10/<name>"),
        (["--model", "nofile.pt2"], "does not exist"),
        (["--model", "torchvision.models:resnet18", "--model-arg", "oops"], "expected KEY=VALUE"),
    ],
)
def test_bad_models_are_one_line_errors(tmp_path, cifar10_root, cifar_c, capsys, monkeypatch, extra, message):
    monkeypatch.setitem(sys.modules, "robustbench", None)  # not importable, whatever is installed
    monkeypatch.chdir(tmp_path)
    assert main(_args(cifar10_root, cifar_c, tmp_path / "o", *extra)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_weights_that_do_not_fit(tmp_path, cifar10_root, cifar_c, capsys):
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "w.pth")
    assert (
        main(
            _args(
                cifar10_root,
                cifar_c,
                tmp_path / "o",
                "--model",
                "torchvision.models:resnet18",
                "--weights",
                str(tmp_path / "w.pth"),
            )
        )
        == 2
    )
    assert "does not fit the model" in capsys.readouterr().err
    torch.save({"a": 1}, tmp_path / "x.pth")
    assert (
        main(
            _args(
                cifar10_root,
                cifar_c,
                tmp_path / "o",
                "--model",
                "torchvision.models:resnet18",
                "--weights",
                str(tmp_path / "x.pth"),
            )
        )
        == 2
    )
    assert "does not hold a state dict" in capsys.readouterr().err
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "sd.pt")
    assert main(_args(cifar10_root, cifar_c, tmp_path / "o", "--model", str(tmp_path / "sd.pt"))) == 2
    assert "is not a TorchScript file" in capsys.readouterr().err


def test_run_and_model_are_exclusive(tmp_path, cifar10_root, cifar_c, capsys):
    assert main(["evaluate", "--corruptions", str(cifar_c)]) == 2
    assert "either a RUN" in capsys.readouterr().err
    assert main(["evaluate", "--model", "torchvision.models:resnet18", "--data", str(cifar10_root)]) == 2
    assert "needs --dataset" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), "--weights", "w.pth"]) == 2
    assert "--weights go(es) with --model" in capsys.readouterr().err


def test_training_model_is_switched_with_a_warning_and_restored(cifar10):
    model = _tiny().train()
    data = (cifar10.test_x[:16], cifar10.test_y[:16])
    with pytest.warns(UserWarning, match="was in training mode"):
        evaluate(model, data, device="cpu")
    assert model.training  # handed back as it came
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate(model, data, device="cpu")
        evaluate(Normalized(model, (0.5,) * 3, (0.2,) * 3).eval(), data, device="cpu")


def test_parse_normalization():
    assert parse_normalization("none") is None
    assert parse_normalization("0.5,0.5,0.5,0.25,0.25,0.25") == ((0.5,) * 3, (0.25,) * 3)
    assert parse_normalization("0.5,0.4,0.3/0.2,0.2,0.1") == ((0.5, 0.4, 0.3), (0.2, 0.2, 0.1))
    assert np.allclose(parse_normalization("IMAGENET")[0], (0.485, 0.456, 0.406))
