"""The progress display: plain lines at most every LOG_INTERVAL_S where stderr is no terminal,
a tqdm bar where it is, nothing when disabled."""

from __future__ import annotations

import io

import pytest

from hepaseg import progress as progress_module
from hepaseg.progress import LOG_INTERVAL_S, Progress


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = _Clock()
    monkeypatch.setattr(progress_module.time, "monotonic", fake)
    return fake


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_line_per_interval_and_one_at_the_end(clock):
    out = io.StringIO()
    bar = Progress(10, "train", "it", stream=out)
    clock.now += LOG_INTERVAL_S / 3
    bar.update()                      # too soon for a line
    clock.now += LOG_INTERVAL_S       # 1 1/3 intervals after the start
    bar.set_postfix(loss="0.5000")
    bar.update()
    clock.now += 1.0
    bar.update(3)                     # too soon after the last line
    clock.now += 5.0
    bar.close()
    elapsed_first = LOG_INTERVAL_S * 4 / 3
    elapsed_last = elapsed_first + 6.0
    rate_first, rate_last = 2 / elapsed_first, 5 / elapsed_last
    assert out.getvalue().splitlines() == [
        f"train: 2/10 it (20%), {rate_first:.3g} it/s, about {8 / rate_first:.0f} s left; loss=0.5000",
        f"train: 5/10 it (50%), {rate_last:.3g} it/s, about {5 / rate_last:.0f} s left; loss=0.5000",
    ]


def test_a_resumed_stage_counts_its_rate_from_where_it_resumed(clock):
    out = io.StringIO()
    with Progress(4, "predict", "case", initial=2, stream=out) as bar:
        clock.now += 4.0
        bar.update(2)
    assert out.getvalue() == f"predict: 4/4 case (100%), {2 / 4.0:.3g} case/s\n"


def test_disabled_shows_nothing_but_written_lines(clock):
    out = io.StringIO()
    bar = Progress(3, "select", "task", enabled=False, stream=out)
    clock.now += 10 * LOG_INTERVAL_S
    bar.update(3)
    bar.write("error: c1: broken")
    bar.close()
    assert out.getvalue() == "error: c1: broken\n"


def test_a_terminal_gets_a_tqdm_bar():
    out = _Terminal()
    with Progress(5, "synth", "case", stream=out) as bar:
        bar.update(5)
    text = out.getvalue()
    assert "\r" in text and "synth" in text and "5/5" in text
