"""The spec kept in a study: stored at creation, read back without the file, old studies by name."""

from __future__ import annotations

import optuna

from hpo.storage import open_storage
from hpo.study.create import create_or_join
from hpo.study.spec import load_spec
from hpo.study.stored_spec import spec_of


def test_a_created_study_gives_back_its_spec_without_the_file(tiny_spec, tmp_path):
    spec = load_spec(tiny_spec)
    study, _ = create_or_join(spec, open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    tiny_spec.unlink()
    again = spec_of(optuna.load_study(study_name="tiny", storage=open_storage(f"sqlite:///{tmp_path / 'hpo.db'}")))
    assert again == spec and again.digest == spec.digest and again.path == tiny_spec


def test_a_study_without_a_stored_spec_falls_back_to_its_file_by_name(tiny_spec, tmp_path, monkeypatch):
    monkeypatch.setenv("HPO_STUDIES_DIR", str(tiny_spec.parent))
    study = optuna.create_study(study_name="old", storage=open_storage(f"sqlite:///{tmp_path / 'hpo.db'}"))
    study.set_user_attr("spec", "tiny")  # what create_or_join wrote before it stored the spec
    assert spec_of(study) == load_spec(tiny_spec)
