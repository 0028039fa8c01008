"""Study specs: shipped studies load, every bad value is one line naming file, key and value."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
import torch

from core.covariance import BlendInputs, measure, snr_bin
from core.evaluation import EvalConfig
from core.experiment import ExperimentConfig, TrainConfig
from core.measurement import classic_covariance
from core.music import ORDER_RULES, model_order
from core.scenario import generate
from core.snr import manifold
from hpo.study import registry
from hpo.study.spec import PARAMS, SpecError, load_spec, studies_dir

STUDIES = Path(__file__).resolve().parents[3] / "studies"

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


@pytest.mark.parametrize("name", ["quick", "default", "ablation-raw", "hybrid", "pareto"])
def test_shipped_studies_load(name):
    spec = load_spec(STUDIES / f"{name}.toml")
    assert spec.name == name and spec.search


@pytest.mark.parametrize("name", ["quick", "pareto", "default", "starved"])
def test_a_spec_that_places_its_bins_gives_each_evaluation_snr_a_bin_of_its_own(name):
    """The calibrated table's edges of these specs sit between the medians of their SNR estimate ŝ at the
    evaluation's SNR points (docs/design.md §3), so that no two points share one β: a scenario or estimate that
    moves ŝ fails here. On PipelineConfig's default edges ŝ's bias put quick's -10 and -5 dB scenes into one bin;
    `coherent` keeps those edges, which its results were measured on."""
    spec = load_spec(STUDIES / f"{name}.toml")
    cfg = ExperimentConfig.from_dict(spec.experiment_dict({p: s.corners()[0] for p, s in spec.search.items()}))
    pipe, grid = cfg.pipeline, EvalConfig().snr_grid_db
    bins = []  # the median scene's bin at each point: the bin of ŝ's median, the binning being monotone in ŝ
    for snr in grid:
        scenes = generate(cfg.scenario, 300, seed=6, snr_db=snr)
        x = measure(scenes.Y, scenes.H, pipe.tikhonov_alpha, manifold(cfg.scenario, pipe.snr_estimate))
        bins.append(int(snr_bin(BlendInputs(None, x, cfg.scenario.scene.k_max), pipe).median()))
    assert bins == list(range(len(grid))), bins  # benchmarks/beta_oracle.py prints ŝ's medians


@pytest.mark.parametrize("name", ["quick", "hybrid", "starved"])
def test_a_shipped_spec_uses_the_order_rule_right_more_often_on_its_scenes(name):
    """Its `order` is at least as accurate as the other rule on classic C at 10 dB (docs/results.md: MDL 1.00 vs
    eigengap 0.67 on quick's scenes, 0.92 vs 0.43 on hybrid's; with starved's L = 2 both near chance, the
    eigengap a little ahead)."""
    spec = load_spec(STUDIES / f"{name}.toml")
    cfg = ExperimentConfig.from_dict(spec.experiment_dict({p: s.corners()[0] for p, s in spec.search.items()}))
    scenes = generate(cfg.scenario, 300, seed=5, snr_db=10.0)
    eigvals = torch.linalg.eigvalsh(classic_covariance(scenes.Y, scenes.H).to(torch.complex128)).flip(-1)
    k_max, snapshots = cfg.scenario.scene.k_max, scenes.Y.shape[-1]
    accuracy = {
        rule: (model_order(eigvals, k_max, None, rule, snapshots) == scenes.K).double().mean().item()
        for rule in ORDER_RULES
    }
    other = max(accuracy[rule] for rule in ORDER_RULES if rule != cfg.pipeline.order)
    assert accuracy[cfg.pipeline.order] >= other, accuracy


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


@pytest.mark.parametrize("name", ["quick", "default", "pareto", "coherent", "starved"])
def test_fully_digital_shipped_studies_do_not_search_the_ridge(name):
    # For H = I, α only scales R_samp and trace_to_N undoes it (tests/core/test_covariance.py): TPE would fit noise.
    spec = load_spec(STUDIES / f"{name}.toml")
    assert spec.scenario.measurement.combiner == "identity" and "alpha" not in spec.search


def test_params_land_on_their_config_sections(tmp_path):
    spec = load_spec(write(tmp_path, TINY))
    d = spec.experiment_dict({"lr": 0.005, "beta": 0.25, "alpha": 0.02, "rho": 0.5, "lam_sub": 2.0})
    assert d["train"]["lr"] == 0.005 and d["train"]["epochs"] == 2 and d["train"]["n_train"] == 64
    assert d["pipeline"] == {"beta": 0.25, "tikhonov_alpha": 0.02, "range_weight": 0.5}
    assert d["model"] == {"arch": "mlp", "width": 32, "depth": 2}
    assert d["loss"] == {"lam_sub": 2.0}
    assert set(PARAMS) >= {"lr", "weight_decay", "beta", "alpha", "rho", "lam_gap", "lam_sub", "width", "arch"}


def test_flat_parameter_names_and_their_fields_are_pinned():
    # The flat names are stored in Optuna trials and spec files: renaming or remapping one breaks old studies.
    assert PARAMS == {
        "lr": ("train", "lr"),
        "weight_decay": ("train", "weight_decay"),
        "batch_size": ("train", "batch_size"),
        "grad_clip": ("train", "grad_clip"),
        "cosine": ("train", "cosine"),
        "amp": ("train", "amp"),
        "tf32": ("train", "tf32"),
        "beta": ("pipeline", "beta"),
        "blend": ("pipeline", "blend"),
        "beta_min": ("pipeline", "beta_min"),
        "alpha": ("pipeline", "tikhonov_alpha"),
        "rho": ("pipeline", "range_weight"),
        "noise_floor": ("pipeline", "noise_floor"),
        "estimator": ("pipeline", "estimator"),
        "order": ("pipeline", "order"),
        "snr_estimate": ("pipeline", "snr_estimate"),
        "beta_bins_db": ("pipeline", "beta_bins_db"),
        "arch": ("model", "arch"),
        "width": ("model", "width"),
        "depth": ("model", "depth"),
        "dropout": ("model", "dropout"),
        "heads": ("model", "heads"),
        "lam_nmse": ("loss", "lam_nmse"),
        "lam_gap": ("loss", "lam_gap"),
        "lam_sub": ("loss", "lam_sub"),
        "lam_peak": ("loss", "lam_peak"),
        "lam_pred": ("loss", "lam_pred"),
        "gap_margin": ("loss", "gap_margin"),
        "loss_target": ("loss", "target"),
        "projector": ("loss", "projector"),
        "subspace_scale": ("loss", "subspace_scale"),
    }


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
        ("[study]", "[study]\nobjective = 'multi'", "pruner.name", "'median'"),  # Optuna's pruners refuse multi
        ("[study]", "[study]\nobjective = 'nmse_db'", "objective", "'nmse_db'"),
        ("[study]", "[study]\nobjective = 'localization'", "objective", "'localization'"),
        ("[study]", "[pruner]\nname = 'mo-asha'\n[study]", "pruner.name", "'mo-asha'"),  # single objective
        ("[study]", "[pruner]\nname = 'mo-asha'\ndominated_fraction = 1.0\n[study]", "dominated_fraction", "1.0"),
        ("[study]", "[pruner]\nname = 'median'\ndominated_fraction = 0.5\n[study]", "pruner.dominated_fraction", "0.5"),
        ("[study]", "[localisation]\nevery = 0\n[study]", "every", "0"),
        ("[study]", "[localisation]\nn_scenes = 0\n[study]\nobjective = 'localisation'", "localisation.n_scenes", "0"),
        ("[study]", "[localisation]\nn_scene = 9\n[study]", "localisation.n_scene", "9"),
        ("[data]", "[bogus]\nx = 1\n[data]", "bogus", "{'x': 1}"),  # unknown section
        ("[study]", "extends = 5\n[study]", "extends", "must be a valid string"),
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
    (tmp_path / "folder.toml").mkdir()  # a directory is not a spec, whatever its name
    monkeypatch.setenv("HPO_STUDIES_DIR", str(tmp_path))
    with pytest.raises(SpecError, match=r"no such study spec \(available: tiny\)$"):
        load_spec("nope")


def test_invalid_toml_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(write(tmp_path, "[data\nn_train = 1"))


def test_circular_extends_is_an_error(tmp_path):
    write(tmp_path, 'extends = "b"\n', "a")
    write(tmp_path, 'extends = "a"\n', "b")
    with pytest.raises(SpecError, match="circular extends"):
        load_spec(tmp_path / "a.toml")


def test_single_is_an_alias_of_nmse(tmp_path):
    spec = load_spec(write(tmp_path, TINY.replace("[study]", "[study]\nobjective = 'single'")))
    assert spec.study.objective == "nmse" and spec.study.directions == ["minimize"]
    assert spec.study.metric_names == ["val_nmse_db"]


@pytest.mark.parametrize(
    "objective, names, directions",
    [("nmse", ["val_nmse_db"], ["minimize"]), ("localisation", ["loc_gain_db"], ["maximize"]),
     ("multi", ["val_nmse_db", "loc_gain_db"], ["minimize", "maximize"])],
)  # fmt: skip
def test_every_objective_names_its_values(tmp_path, objective, names, directions):
    pruner = "[pruner]\nname = 'mo-asha'\n" if objective == "multi" else ""
    spec = load_spec(write(tmp_path, TINY.replace("[study]", f"{pruner}[study]\nobjective = '{objective}'")))
    assert spec.study.metric_names == names and spec.study.directions == directions


def test_localisation_settings_reach_the_experiment(tmp_path):
    spec = load_spec(write(tmp_path, TINY + "\n[localisation]\nn_scenes = 16\nevery = 3\n"))
    assert spec.experiment_dict({"lr": 0.005, "beta": 0.25})["localisation"] == {"n_scenes": 16, "every": 3}


def test_the_retrains_scenes_default_to_500_and_stay_out_of_the_experiment(tmp_path):
    assert load_spec(write(tmp_path, TINY)).final_scenes == 500
    spec = load_spec(write(tmp_path, TINY + "\n[localisation]\nn_scenes = 16\nfinal_scenes = 40\n", "other"))
    assert spec.final_scenes == 40
    assert spec.experiment_dict({"lr": 0.005, "beta": 0.25})["localisation"] == {"n_scenes": 16, "every": 5}


def test_blend_mode_parameters_land_on_the_pipeline(tmp_path):
    spec = load_spec(write(tmp_path, TINY))
    d = spec.experiment_dict({"lr": 0.005, "beta": 0.25, "blend": "adaptive", "beta_min": 0.1})
    assert d["pipeline"] == {"beta": 0.25, "blend": "adaptive", "beta_min": 0.1}


def test_a_child_spec_with_another_pruner_drops_the_parents_settings(tmp_path):
    write(tmp_path, TINY.replace("[study]", "[pruner]\nname = 'median'\nn_warmup_steps = 4\n[study]"), "base")
    child = write(tmp_path, 'extends = "base"\n[study]\nobjective = "multi"\n[pruner]\nname = "mo-asha"\n', "child")
    spec = load_spec(child)
    assert spec.pruner.name == "mo-asha" and spec.pruner.n_warmup_steps == 2  # the default, not the parent's 4


def test_data_and_train_default_to_train_config(tmp_path):
    needed = "[study]\nn_trials = 1\n[data]\nn_train = 16384\nn_val = 2048\n[train]\nepochs = 10\n"
    search = "[search.lr]\ntype = 'float'\nlow = 1e-3\nhigh = 1e-2\n"
    spec = load_spec(write(tmp_path, f"{needed}[fixed]\narch = 'mlp'\n{search}"))
    assert spec.train == TrainConfig()  # one set of defaults: seeds, fresh_data, threads, ...
    d = spec.experiment_dict({"lr": TrainConfig().lr})
    assert ExperimentConfig.from_dict(d).train == TrainConfig(device=d["train"]["device"])  # "auto", resolved


@pytest.mark.parametrize("section", ["data", "train", "localisation", "sampler", "pruner", "study", "scenario.scene"])
def test_an_unknown_key_in_any_section_is_refused_naming_it(tmp_path, section):
    header = f"[{section}]"
    text = TINY.replace(header, f"{header}\nbogus_key = 7") if header in TINY else f"{TINY}\n{header}\nbogus_key = 7\n"
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as e:
        load_spec(path)
    assert f"{section}.bogus_key = 7: is not a known key" in str(e.value)


def test_a_bool_where_a_number_is_declared_is_refused(tmp_path):
    with pytest.raises(SpecError, match="data.n_train = True"):
        load_spec(write(tmp_path, TINY.replace("n_train = 64", "n_train = true")))


def test_stored_tables_with_final_epochs_still_load(tmp_path):
    spec = load_spec(write(tmp_path, TINY.replace("epochs = 2", "epochs = 2\nfinal_epochs = 7")))
    assert spec.final_epochs == 7 and spec.train.epochs == 2
    assert load_spec(spec.path, table=spec.table) == spec


def test_mo_asha_settings_are_checked_with_the_spec(tmp_path):
    text = TINY.replace("[study]\n", '[study]\nobjective = "multi"\n')
    path = write(tmp_path, text + '\n[pruner]\nname = "mo-asha"\nn_startup_trials = 0\n', "mo")
    with pytest.raises(SpecError, match=r"mo.toml: .*n_startup_trials = 0: must be >= 1"):
        load_spec(str(path))


def test_pruners_are_built_from_their_settings_and_hyperband_spans_the_training(tmp_path):
    text = TINY.replace("[study]", "[pruner]\nname = 'hyperband'\nmin_resource = 1\nreduction_factor = 4\n[study]")
    built = registry.pruner(load_spec(write(tmp_path, text.replace("epochs = 2", "epochs = 5"))))
    assert isinstance(built, optuna.pruners.HyperbandPruner)
    assert (built._min_resource, built._max_resource, built._reduction_factor) == (1, 5, 4)  # max: train.epochs


@pytest.mark.parametrize(
    "cut, missing",
    [
        (lambda text: "", "study"),
        (lambda text: text[:1000], "study"),  # quick.toml's first 1000 bytes: its comments
        (lambda text: text.split("[data]")[0], "data"),
        (lambda text: text.replace("epochs = 10\n", ""), "train.epochs"),
        (lambda text: text.replace("n_val = 1024\n", ""), "data.n_val"),
        (lambda text: text.split("[search.")[0], "search"),
    ],
)
def test_a_spec_without_what_a_study_needs_is_refused_naming_it(tmp_path, cut, missing):
    text = cut((STUDIES / "quick.toml").read_text())
    with pytest.raises(SpecError) as e:
        load_spec(write(tmp_path, text, "quick"))
    (line,) = str(e.value).splitlines()
    assert line.startswith(f"{tmp_path / 'quick.toml'}: {missing} is missing")


def test_a_child_inherits_what_a_study_needs_from_its_parent(tmp_path):
    write(tmp_path, TINY, "base")
    spec = load_spec(write(tmp_path, 'extends = "base"\n[study]\ndescription = "child"\n', "child"))
    inherited = (spec.study.n_trials, spec.train.n_train, spec.train.epochs, tuple(spec.search))
    assert inherited == (3, 64, 2, ("lr", "beta"))


@pytest.mark.parametrize(
    "section, key, value, limit",
    [
        ("data", "n_train", 10**12, 1_000_000),
        ("data", "n_val", 10**9, 1_000_000),
        ("train", "epochs", 10**6, 10_000),
        ("train", "final_epochs", 10**6, 10_000),
        ("train", "threads", 10_000, 256),
        ("study", "n_trials", 10**9, 100_000),
        ("localisation", "n_scenes", 10**9, 10_000),
        ("calibration", "n_scenes", 10**9, 100_000),
        ("fixed", "batch_size", 10**8, 65_536),
    ],
)
def test_a_value_beyond_what_a_machine_holds_is_refused_naming_the_limit(tmp_path, section, key, value, limit):
    header, line = f"[{section}]", f"{key} = {value}"
    text = re.sub(rf"^{key} = .*$", line, TINY, flags=re.M) if f"\n{key} = " in TINY else TINY
    if line not in text:
        text = text.replace(header, f"{header}\n{line}") if header in text else f"{text}\n{header}\n{line}\n"
    with pytest.raises(SpecError) as e:
        load_spec(write(tmp_path, text))
    (line,) = str(e.value).splitlines()
    assert f"must be <= {limit}" in line and key in line and str(value) in line
