"""Default outputs: out/ is created on demand, any other missing folder is an error naming the path, and a study's
database is never overwritten."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from core.errors import CovblendError
from hpo.paths import default_output, prepare_output


def test_a_file_in_out_gets_its_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert prepare_output(default_output("report.html")) == Path("out/report.html")
    assert (tmp_path / "out").is_dir()


def test_a_missing_folder_elsewhere_is_an_error_not_a_new_tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CovblendError, match="cannot write typo/report.html: directory typo does not exist"):
        prepare_output(Path("typo/report.html"))
    assert not (tmp_path / "typo").exists()


def test_a_directory_is_no_output_file(tmp_path):
    with pytest.raises(CovblendError, match=f"cannot write {tmp_path}: it is a directory"):
        prepare_output(tmp_path)


def test_an_sqlite_database_is_no_output_file(tmp_path):
    db = tmp_path / "hpo.db"
    sqlite3.connect(db).execute("CREATE TABLE studies (id INTEGER)").connection.close()
    before = db.read_bytes()
    with pytest.raises(CovblendError, match=f"cannot write {db}: it is an SQLite database"):
        prepare_output(db)
    assert db.read_bytes() == before
