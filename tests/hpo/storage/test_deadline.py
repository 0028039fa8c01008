"""A stop's storage calls share one patience (hpo.storage.deadline.impatient): once one has given up on a database
that does not answer, the thread's later calls give up without trying, so a stop's several writes cost one wait,
not one each."""

from __future__ import annotations

import pytest
from optuna.exceptions import StorageInternalError

from hpo.storage import guard
from hpo.storage.deadline import impatient
from hpo.storage.guard import StorageUnavailable, retry_transient


class Down:
    """A storage call whose database does not answer: every attempt is a connection error, counted."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self) -> None:
        self.attempts += 1
        raise StorageInternalError("the connection was cut")


@pytest.fixture
def impatient_thread():
    impatient(0.3)
    yield
    impatient(None)


def test_an_impatient_call_after_one_that_gave_up_does_not_try(impatient_thread):
    first, second = Down(), Down()
    with pytest.raises(StorageUnavailable, match="did not answer for 0 s"):
        retry_transient(first, "get_trial")
    assert first.attempts >= 1
    with pytest.raises(StorageUnavailable) as e:
        retry_transient(second, "set_trial_user_attr")
    expected = "the database did not answer (storage set_trial_user_attr not tried: get_trial gave up before it)"
    assert str(e.value) == expected
    assert second.attempts == 0


def test_patience_restored_tries_again(impatient_thread):
    with pytest.raises(StorageUnavailable):
        retry_transient(Down(), "get_trial")
    impatient(None)
    assert retry_transient(lambda: "answered", "get_trial") == "answered"


def test_without_impatience_each_call_rides_out_its_own_outage(monkeypatch):
    monkeypatch.setattr(guard, "OUTAGE_S", 0.3)
    first, second = Down(), Down()
    for call in (first, second):
        with pytest.raises(StorageUnavailable, match="did not answer for 0 s"):
            retry_transient(call, "get_trial")
    assert first.attempts >= 1 and second.attempts >= 1


def test_a_stop_that_lands_during_a_calls_retries_shortens_them(monkeypatch):
    """A signal handler runs between the retries of the call under way (run_worker's stop sets impatient there):
    that call gives up at its next failure, not after the outage limit it began with."""
    monkeypatch.setattr(guard, "OUTAGE_S", 30.0)
    down = Down()

    def signalled_after_the_first_attempt() -> None:
        if down.attempts == 1:
            impatient(0.0)
        down()

    try:
        with pytest.raises(StorageUnavailable, match="did not answer for 0 s"):
            retry_transient(signalled_after_the_first_attempt, "set_trial_user_attrs")
    finally:
        impatient(None)
    assert down.attempts == 2
