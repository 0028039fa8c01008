"""hpo.storage.internals: the pinned Optuna has every private name hpo uses, and a missing one is one line."""

from __future__ import annotations

import pytest

from hpo.storage import internals, open_storage
from hpo.storage.guard import RETRIED


def test_the_installed_optuna_has_every_private_name_hpo_relies_on():
    assert internals.missing(RETRIED) == []


def test_a_missing_private_name_is_one_line_naming_it():
    with pytest.raises(internals.OptunaChanged) as raised:
        internals.check(("_no_such_method",))
    message = str(raised.value)
    assert "RDBStorage._no_such_method" in message and "\n" not in message


def test_open_storage_checks_before_it_opens(tmp_path, monkeypatch):
    storage = open_storage(f"sqlite:///{tmp_path / 'hpo.db'}")  # the check passes on the pinned version
    assert internals.backend(storage) is storage
    monkeypatch.setattr(internals, "missing", lambda extra=(): ["RDBStorage._gone"])  # as if Optuna renamed one
    with pytest.raises(internals.OptunaChanged, match="RDBStorage._gone"):
        open_storage(f"sqlite:///{tmp_path / 'other.db'}")
    assert not (tmp_path / "other.db").exists()  # refused before anything was created
