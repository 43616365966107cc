import pytest

from robustbench_aux.cli import main


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "data" in capsys.readouterr().out


def test_data_info_on_shared_copy(cifar10_root, capsys):
    assert main(["data", "info", "--data", str(cifar10_root)]) == 0
    out = capsys.readouterr().out
    assert "cifar10   ok" in out and "train 50,000" in out and "cifar100  missing" in out


def test_data_info_reports_broken_copy(tmp_path, capsys):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "train_x.npy").write_bytes(b"garbage")
    assert main(["data", "info", "--data", str(tmp_path)]) == 0
    assert "BROKEN" in capsys.readouterr().out


def test_prepare_offline_is_one_line_error(tmp_path, capsys):
    assert main(["data", "prepare", "--dataset", "cifar100", "--data", str(tmp_path), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cifar100 not found") and err.count("\n") == 1
