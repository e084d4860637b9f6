"""The job store: an instance recorded twice counts once, quiet series become due, a restart reopens
an interrupted segmentation, retry takes only failed or ignored series."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from hepaseg.errors import InputError
from hepaseg.node.store import Store


def header(description="hbp") -> Dataset:
    ds = Dataset()
    ds.StudyInstanceUID, ds.PatientID, ds.SeriesDescription = "1.2.3", "P1", description
    return ds


def test_the_same_instance_twice_counts_once_and_quiet_series_are_due(tmp_path):
    store = Store(tmp_path / "jobs.db")
    assert store.add_instance("1.1", "9.1", header(), "SCANNER", now=100.0) == "new"
    assert store.add_instance("1.2", "9.1", header(), "SCANNER", now=101.0) == "more"
    assert store.add_instance("1.2", "9.1", header(), "SCANNER", now=150.0) == ""
    assert store.get("9.1")["instances"] == 2 and store.get("9.1")["last_received"] == 101.0
    assert store.due_series(30.0, now=130.0) == [] and store.due_series(30.0, now=131.0) == ["9.1"]
    assert store.update("9.1", expect="receiving", state="done", finished=140.0)
    assert store.add_instance("1.2", "9.1", header(), "SCANNER", now=160.0) == ""  # sent again: nothing new
    assert store.get("9.1")["state"] == "done"
    assert store.add_instance("1.3", "9.1", header(), "SCANNER", now=170.0) == "new"  # a new instance reopens it
    assert store.get("9.1")["state"] == "receiving" and store.get("9.1")["instances"] == 3


def test_a_restart_reopens_segmenting_keeps_sending_and_retry_takes_failed_or_ignored(tmp_path):
    store = Store(tmp_path / "jobs.db")
    for n, state in enumerate(("segmenting", "sending", "ignored", "done")):
        store.add_instance(f"1.{n}", f"9.{n}", header(), "SCANNER", now=100.0)
        store.update(f"9.{n}", state=state, finished=100.0)
    store.close()
    store = Store(tmp_path / "jobs.db")  # as after kill -9
    assert store.reopen_unfinished() == 1
    assert [store.get(f"9.{n}")["state"] for n in range(4)] == ["receiving", "sending", "ignored", "done"]
    assert store.retry("9.2") == "ignored"
    assert store.get("9.2")["state"] == "receiving" and store.get("9.2")["forced"] == 1
    for uid, fragment in (("9.3", "series is done"), ("8.8", "no such series")):
        with pytest.raises(InputError, match=fragment):
            store.retry(uid)
    assert store.to_clean(3600.0, now=3699.0) == [] and store.to_clean(3600.0, now=3700.0) == ["9.3"]
