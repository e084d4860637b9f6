"""One progress display for every stage: a tqdm bar on a terminal, plain lines in a log.

Where stderr is a terminal, ``Progress`` is a tqdm bar. Where it is not (``make demo > demo.log``,
a cluster job), it prints one plain line at most every ``LOG_INTERVAL_S`` seconds and one at the
end, e.g. ``train: 1500/2000 it (75%), 7.9 it/s, about 63 s left; loss=0.412``, instead of
thousands of bar redraws. ``enabled=False`` shows nothing. ``write`` prints a line without
breaking the bar. tqdm is imported only when a bar is shown.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

LOG_INTERVAL_S = 30.0


class Progress:
    """Counts ``total`` units of work from ``initial``; a context manager that closes itself.

    Args:
        total: units of work in all.
        desc: the stage's name, the start of every line.
        unit: what is counted (``it``, ``case``, ``task``).
        initial: units already done (a resumed stage).
        enabled: False shows nothing.
        stream: where to write (default stderr).
    """

    def __init__(self, total: int, desc: str, unit: str = "it", initial: int = 0, enabled: bool = True,
                 stream: TextIO | None = None) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.enabled = enabled
        self._stream = stream or sys.stderr
        self._postfix = ""
        self._bar = None
        self._start = self._last = time.monotonic()
        self._start_n = initial
        if enabled and self._stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True,
                             file=self._stream)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and time.monotonic() - self._last >= LOG_INTERVAL_S:
            self._line()

    def set_postfix(self, **values: Any) -> None:
        """Show ``key=value`` pairs after the count (e.g. the loss)."""
        self.set_postfix_str(", ".join(f"{k}={v}" for k, v in values.items()))

    def set_postfix_str(self, text: str) -> None:
        self._postfix = text
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def write(self, line: str) -> None:
        """Print ``line`` on its own line (above the bar on a terminal); shown even when disabled."""
        if self._bar is not None:
            self._bar.write(line, file=self._stream)
        else:
            print(line, file=self._stream, flush=True)

    def close(self) -> None:
        """End the display: close the bar, or print the last plain line."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self.n > self._start_n:
            self._line()
        self.enabled = False

    def _line(self) -> None:
        now = time.monotonic()
        self._last = now
        rate = (self.n - self._start_n) / max(now - self._start, 1e-9)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        left = f", about {(self.total - self.n) / rate:.0f} s left" if rate > 0 and self.n < self.total else ""
        extra = f"; {self._postfix}" if self._postfix else ""
        print(f"{self.desc}: {self.n}/{self.total} {self.unit}{share}, {rate:.3g} {self.unit}/s{left}{extra}",
              file=self._stream, flush=True)
