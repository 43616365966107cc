"""Grid files expand into the expected runs and commands; bad grids are one-line errors."""

import pytest

from robustbench_aux.errors import UserError
from robustbench_aux.sweep import load_sweep

GRID = """
[defaults]
dataset = "cifar100"
data = "DATA"
recipe = "reference"
out = "OUT"
corruptions = "DATA/CIFAR-100-C"

[[runs]]
methods = ["plain", "auxiliary"]
archs = ["resnet18"]
seeds = [0, 1, 2]

[[runs]]
methods = ["plain", "per_corruption"]
archs = ["resnet18", "resnet50"]
seeds = [0]
vary = { corruption = ["noise", "blur"] }
"""


def write(tmp_path, text=GRID):
    p = tmp_path / "grid.toml"
    p.write_text(text)
    return p


def test_expansion_and_dedup(tmp_path):
    sweep = load_sweep(write(tmp_path))
    names = [j.name for j in sweep.jobs]
    assert names[:6] == [f"{m}-resnet18-s{s}" for m in ("plain", "auxiliary") for s in range(3)]
    assert "per_corruption-noise-resnet50-s0" in names and "plain-noise-resnet18-s0" in names
    assert len(names) == len(set(names)) == 6 + 8
    job = sweep.jobs[0]
    train, evaluate = job.steps
    assert train.argv[:8] == ["train", "--method", "plain", "--arch", "resnet18", "--seed", "0", "--out"]
    assert train.done.name == "final.pt" and train.resume_if.name == "last.pt"
    assert evaluate.argv[:4] == ["evaluate", "OUT/plain-resnet18-s0", "--corruptions", "DATA/CIFAR-100-C"]
    pc = next(j for j in sweep.jobs if j.name == "per_corruption-blur-resnet18-s0")
    assert pc.steps[0].argv[-2:] == ["--set", "corruption=blur"]


def test_filters_and_overrides(tmp_path):
    sweep = load_sweep(
        write(tmp_path),
        overrides={"epochs": 1, "out": "X"},
        methods=["auxiliary"],
        archs=["test_tiny"],
        seeds=[5],
    )
    assert [j.name for j in sweep.jobs] == ["auxiliary-test_tiny-s5"]
    argv = sweep.jobs[0].steps[0].argv
    assert (
        argv[argv.index("--epochs") + 1] == "1"
        and argv[argv.index("--out") + 1] == "X/auxiliary-test_tiny-s5"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "[defaults]\nepoch = 3\n[[runs]]\nmethods=['plain']\narchs=['a']\nseeds=[0]\n",
            "unknown key 'epoch'",
        ),
        ("[[runs]]\nmethods=['plain']\narchs=['a']\n", "'seeds' is missing"),
        ("[[runs]]\nmethod=['plain']\narchs=['a']\nseeds=[0]\n", "unknown key 'method'"),
        ("[default]\n", "unknown top-level key 'default'"),
        (
            "[report]\nparity_lable = 'x'\n[[runs]]\nmethods=['plain']\narchs=['a']\nseeds=[0]\n",
            "unknown key 'parity_lable'",
        ),
        (
            "[report]\nparity_label = 'x'\n[[runs]]\nmethods=['plain']\narchs=['a']\nseeds=[0]\n",
            "give 'parity' too",
        ),
        (
            "[report]\nparity = 3\n[[runs]]\nmethods=['plain']\narchs=['a']\nseeds=[0]\n",
            "'parity' must be a str",
        ),
        ("[[runs]\n", "not valid TOML"),
    ],
)
def test_bad_grids(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        load_sweep(write(tmp_path, text))


def test_empty_after_filter(tmp_path):
    with pytest.raises(UserError, match="holds no runs"):
        load_sweep(write(tmp_path), methods=["augmix"])


RUN = "[[runs]]\nmethods = ['plain']\narchs = ['a']\nseeds = [0]\n"


def test_one_run_from_two_blocks_with_other_steps_is_refused_naming_both(tmp_path):
    text = "[defaults]\nout = 'OUT'\n" + "".join(f"{RUN}set = {{lr = {lr}}}\n" for lr in (0.1, 0.1, 0.2))
    with pytest.raises(UserError) as info:
        load_sweep(write(tmp_path, text))
    message = str(info.value)
    assert message.startswith("[[runs]] blocks 1 and 3 both make run 'plain-a-s0' with different steps")
    assert "lr=0.1 vs lr=0.2" in message and len(message.splitlines()) == 1


def test_the_same_run_twice_with_the_same_steps_is_one_run(tmp_path):
    text = f"[defaults]\nout = 'OUT'\n{RUN}set = {{lr = 0.1, amp = 'off'}}\n{RUN}set = {{amp = 'off', lr = 0.1}}\n"
    sweep = load_sweep(write(tmp_path, text))
    assert [j.name for j in sweep.jobs] == ["plain-a-s0"]


@pytest.mark.parametrize(
    "defaults, runs, message",
    [
        ('data = "d\\nx"', "", "'data' holds a control character (U+000A LINE FEED) at position 2"),
        ("recipe = '-x'", "", "'recipe' must not start with '-'"),
        ('device = "cpu\\u2029"', "", "'device' holds a control character (U+2029 PARAGRAPH SEPARATOR)"),
        ("set = {'a b' = 1}", "", "set: 'a b' is not a --set key"),
        ("set = {lr = {x = 1}}", "", "set.lr values must be strings, numbers or booleans (or lists of them)"),
        ('set = {lr = ["a\\u0085"]}', "", "set.lr holds a control character (U+0085 NEXT LINE)"),
        ("", 'vary = {lr = ["\\u200b"]}', "vary.lr holds a control character (U+200B ZERO WIDTH SPACE)"),
        ("", "vary = {'' = [1]}", "vary: '' is not a --set key"),
    ],
)
def test_grid_values_that_would_break_a_command_line_are_refused(tmp_path, defaults, runs, message):
    with pytest.raises(UserError) as info:
        load_sweep(write(tmp_path, f"[defaults]\n{defaults}\n{RUN}{runs}\n"))
    assert message in str(info.value) and len(str(info.value).splitlines()) == 1


def test_values_with_shell_syntax_are_kept_as_they_are(tmp_path):
    text = f"[defaults]\ndata = 'my data;$(x)'\nset = {{alpha = \"`y` 'q'\"}}\n{RUN}"
    (job,) = load_sweep(write(tmp_path, text)).jobs
    argv = job.steps[0].argv
    assert argv[argv.index("--data") + 1] == "my data;$(x)" and argv[-1] == "alpha=`y` 'q'"
