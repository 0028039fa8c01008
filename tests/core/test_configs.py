"""Every config is checked alike: strict types, declared bounds, unknown keys refused at every level, one line."""

from __future__ import annotations

import pytest

from core.array import ArrayConfig
from core.errors import ConfigError
from core.evaluation import EvalConfig
from core.experiment import ExperimentConfig, TrainConfig
from core.scenario import ScenarioConfig


@pytest.mark.parametrize(
    "build, shown",
    [
        (lambda: ArrayConfig(n_elements=True), "n_elements=True"),
        (lambda: ArrayConfig(wavelength=True), "wavelength=True"),
        (lambda: TrainConfig(lr=True), "lr=True"),
        (lambda: TrainConfig(threads=True), "threads=True"),
        (lambda: ExperimentConfig.from_dict({"scenario": {"measurement": {"snapshots": True}}}), "snapshots=True"),
    ],
)
def test_a_bool_where_a_number_is_declared_is_refused(build, shown):
    with pytest.raises(ConfigError, match=shown):
        build()


def test_numbers_are_not_read_from_strings():
    with pytest.raises(ConfigError, match="n_elements='8'"):
        ArrayConfig(n_elements="8")


@pytest.mark.parametrize(
    "d, key",
    [
        ({"trainer": {}}, "trainer"),
        ({"train": {"learning_rate": 0.1}}, "train.learning_rate"),
        ({"scenario": {"antenna": {}}}, "scenario.antenna"),
        ({"scenario": {"array": {"elements": 8}}}, "scenario.array.elements"),
    ],
)
def test_an_unknown_key_at_any_level_is_refused_naming_it(d, key):
    with pytest.raises(ConfigError) as e:
        ExperimentConfig.from_dict(d)
    msg = str(e.value)
    assert "\n" not in msg and f"{key} is not a known key" in msg and e.value.key == key


def test_errors_are_one_line_naming_key_and_value():
    with pytest.raises(ConfigError) as e:
        ScenarioConfig.from_dict({"array": {"n_elements": 1}})
    assert str(e.value) == "array.n_elements must be >= 2, got array.n_elements=1"


def test_lists_become_tuples_and_ints_become_floats_where_declared():
    cfg = ScenarioConfig.from_dict({"scene": {"snr_db": [0, 10]}})
    assert cfg.scene.snr_db == (0.0, 10.0) and all(type(v) is float for v in cfg.scene.snr_db)


def test_to_dict_round_trips_and_keeps_int_and_float_types():
    cfg = ExperimentConfig.from_dict({"model": {"width": 64}, "train": {"lr": 1e-3, "threads": 2}})
    d = cfg.to_dict()
    assert ExperimentConfig.from_dict(d) == cfg
    assert type(d["model"]["width"]) is int and type(d["train"]["lr"]) is float and d["train"]["threads"] == 2
    assert "n_rf" not in d["scenario"]["measurement"]  # None is dropped (TOML has no null) and defaults back


def test_configs_are_frozen_and_replace_validates():
    cfg = TrainConfig()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's frozen-instance error
        cfg.lr = 0.1
    assert cfg.replace(lr=0.1).lr == 0.1
    with pytest.raises(ConfigError, match="lr"):
        cfg.replace(lr=-1.0)


def test_eval_config_orders_methods_as_the_report_does():
    assert EvalConfig(methods=["oracle", "learned"]).methods == ("learned", "oracle")
