"""Study specs: shipped studies load, every bad value is one line naming file, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.spec import PARAMS, SpecError, load_spec, studies_dir

STUDIES = Path(__file__).resolve().parents[2] / "studies"

TINY = """
[study]
n_trials = 3

[data]
n_train = 64
n_val = 32

[train]
epochs = 2

[fixed]
arch = "mlp"
width = 32
depth = 2

[search.lr]
type = "float"
low = 1e-3
high = 1e-2
log = true

[search.beta]
type = "float"
low = 0.2
high = 0.4
"""


def write(tmp_path: Path, text: str, name: str = "s") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["quick", "default", "ablation-raw"])
def test_shipped_studies_load(name):
    spec = load_spec(STUDIES / f"{name}.toml")
    assert spec.name == name and spec.search


def test_ablation_raw_is_default_with_raw_loss_target():
    default, raw = load_spec(STUDIES / "default.toml"), load_spec(STUDIES / "ablation-raw.toml")
    assert raw.search == default.search
    assert raw.fixed == {**default.fixed, "loss_target": "raw"}
    assert raw.study.n_trials == default.study.n_trials


def test_study_name_resolves_in_studies_dir(monkeypatch, tmp_path):
    write(tmp_path, TINY, "tiny")
    monkeypatch.setenv("HPO_STUDIES_DIR", str(tmp_path))
    assert studies_dir() == tmp_path
    assert load_spec("tiny").path == tmp_path / "tiny.toml"


def test_params_land_on_their_config_sections(tmp_path):
    spec = load_spec(write(tmp_path, TINY))
    d = spec.experiment_dict({"lr": 0.005, "beta": 0.25, "alpha": 0.02, "rho": 0.5, "lam_sub": 2.0})
    assert d["train"]["lr"] == 0.005 and d["train"]["epochs"] == 2 and d["train"]["n_train"] == 64
    assert d["pipeline"] == {"beta": 0.25, "tikhonov_alpha": 0.02, "range_weight": 0.5}
    assert d["model"] == {"arch": "mlp", "width": 32, "depth": 2}
    assert d["loss"] == {"lam_sub": 2.0}
    assert set(PARAMS) >= {"lr", "weight_decay", "beta", "alpha", "rho", "lam_gap", "lam_sub", "width", "arch"}


def test_digest_ignores_comments_but_not_values(tmp_path):
    a = load_spec(write(tmp_path, TINY, "a"))
    b = load_spec(write(tmp_path, "# a comment\n" + TINY, "b"))
    c = load_spec(write(tmp_path, TINY.replace("n_trials = 3", "n_trials = 4"), "c"))
    assert a.digest == b.digest != c.digest


@pytest.mark.parametrize(
    "old, new, key, value",
    [
        ("[data]", "[data]\nn_tran = 5", "data.n_tran", "5"),  # unknown key
        ("n_trials = 3", "n_trials = 'many'", "n_trials", "'many'"),  # wrong type
        ("low = 0.2", "low = 0.5", "low", "0.5"),  # low > high
        ("high = 0.4", "high = 1.5", "search.beta", "1.5"),  # beta outside [0, 1], caught by PipelineConfig
        ("low = 1e-3", "low = -1e-3", "log", "-0.001"),  # log range through zero
        ('arch = "mlp"', 'arch = "resnet"', "fixed", "resnet"),  # unknown architecture
        ("[fixed]", "[fixed]\nbogus = 1", "fixed.bogus", "1"),  # unknown parameter
        ("[fixed]", "[fixed]\nlr = 0.1", "search.lr", "0.1"),  # fixed and searched at once
        ("[study]", "[sampler]\nname = 'bayes'\n[study]", "name", "'bayes'"),
        ("[study]", "[pruner]\nname = 'hyperband'\nn_warmup_steps = 2\n[study]", "pruner.n_warmup_steps", "2"),
        ("[study]", "[study]\nobjective = 'multi'", "pruner.name", "'median'"),  # multi cannot prune
        ("[data]", "[data]\nseed = -1", "seed", "-1"),
        ("[data]", "[scenario.scene]\nk_max = 40\n[data]", "k_max", "40"),
    ],
)
def test_bad_spec_is_one_line_naming_file_key_and_value(tmp_path, old, new, key, value):
    path = write(tmp_path, TINY.replace(old, new, 1))
    with pytest.raises(SpecError) as e:
        load_spec(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and key in msg and value in msg


def test_unknown_study_lists_available(tmp_path, monkeypatch):
    write(tmp_path, TINY, "tiny")
    monkeypatch.setenv("HPO_STUDIES_DIR", str(tmp_path))
    with pytest.raises(SpecError, match="no such study spec.*tiny"):
        load_spec("nope")


def test_invalid_toml_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(write(tmp_path, "[data\nn_train = 1"))


def test_circular_extends_is_an_error(tmp_path):
    write(tmp_path, 'extends = "b"\n', "a")
    write(tmp_path, 'extends = "a"\n', "b")
    with pytest.raises(SpecError, match="circular extends"):
        load_spec(tmp_path / "a.toml")
