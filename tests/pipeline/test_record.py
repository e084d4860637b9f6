"""The pipeline record's stage runner (``pipeline.record.Stages``): failures told in words."""

from __future__ import annotations

import threading

import pytest

from hepaseg.errors import InputError
from hepaseg.pipeline.record import Record, Stages, failure_text
from hepaseg.presets import demo_config


def test_a_failed_stage_is_told_in_words_and_the_stages_it_stopped_say_so(tmp_path):
    record = Record(tmp_path, demo_config(), resume=False)
    lines: list[str] = []
    stop = threading.Event()

    def fails():
        raise ValueError("boom")

    def stopped_by_it():  # the other stage's work ends with a consequential error once stopped
        assert stop.wait(30)
        return [][0]

    def works():
        return {"value": 1}

    with pytest.raises(ValueError, match="boom"):
        Stages(record, lines.append).run_together(
            [("a", "1", fails, ()), ("b", "1", stopped_by_it, ()), ("c", "1", works, ())], on_error=stop.set)
    assert "[a] failed: unexpected ValueError (boom)" in lines
    assert "[b] stopped: another stage failed" in lines
    assert not any("list index" in line for line in lines)
    assert record.done("c", "1") and not record.done("a", "1") and not record.done("b", "1")


def test_failure_text_keeps_an_input_errors_own_words():
    assert failure_text(InputError("cfg.json", "train.eta must be >= 2")) == "cfg.json: train.eta must be >= 2"
    assert failure_text(KeyError("x")) == "unexpected KeyError ('x')"
    assert failure_text(RuntimeError()) == "unexpected RuntimeError"
