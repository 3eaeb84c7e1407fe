"""Progress of a running bulk run: a Rich bar on a terminal, plain log lines otherwise."""
from __future__ import annotations

import time
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ingest.bulk.report import Summary


class ProgressSink(Protocol):
    def start(self, summary: Summary) -> None: ...
    def update(self, summary: Summary) -> None: ...
    def stop(self, summary: Summary) -> None: ...


class _Rate:
    """Pages per minute and ETA from the pages finished since this session started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.done0: int | None = None

    def measure(self, s: Summary) -> tuple[float, float | None]:
        if self.done0 is None:
            self.done0 = s.done_pages
        minutes = max((time.monotonic() - self.t0) / 60.0, 1e-9)
        rate = (s.done_pages - self.done0) / minutes
        eta = (s.open_pages / rate * 60.0) if rate > 0 else None
        return rate, eta


def _eta_text(eta: float | None) -> str:
    if eta is None:
        return "--:--"
    minutes, seconds = divmod(int(eta), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"


def _status(s: Summary) -> str:
    return (f"stored {s.stored_units} · review {s.review_units} · failed {s.failed_units} · "
            f"skipped {s.skipped_units}")


class RichProgress:
    def __init__(self, console: Console, run_id: str) -> None:
        self.console, self.run_id, self.rate = console, run_id, _Rate()
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.completed}/{task.total} pages"),
            TextColumn("{task.fields[rate]:.1f} pages/min"), TextColumn("ETA {task.fields[eta]}"),
            TimeElapsedColumn(), TextColumn("{task.fields[status]}"), console=console, transient=False)
        self.task = None

    def start(self, summary: Summary) -> None:
        self.progress.start()
        self.task = self.progress.add_task(f"run {self.run_id[-8:]}", total=summary.pages,
                                           completed=summary.done_pages, rate=0.0, eta="--:--",
                                           status=_status(summary))

    def update(self, summary: Summary) -> None:
        rate, eta = self.rate.measure(summary)
        self.progress.update(self.task, total=summary.pages, completed=summary.done_pages, rate=rate,
                             eta=_eta_text(eta), status=_status(summary))

    def stop(self, summary: Summary) -> None:
        self.update(summary)
        self.progress.stop()


class PlainProgress:
    """One line every ``every_s`` seconds (logs, CI, nohup)."""

    def __init__(self, console: Console, run_id: str, every_s: float = 10.0) -> None:
        self.console, self.run_id, self.every_s, self.rate = console, run_id, every_s, _Rate()
        self.last = 0.0

    def _line(self, summary: Summary) -> None:
        rate, eta = self.rate.measure(summary)
        self.console.print(f"bulk {self.run_id}: {summary.done_pages}/{summary.pages} pages, "
                           f"{rate:.1f} pages/min, ETA {_eta_text(eta)}, {_status(summary)}",
                           highlight=False, soft_wrap=True)

    def start(self, summary: Summary) -> None:
        self.rate.measure(summary)
        self._line(summary)
        self.last = time.monotonic()

    def update(self, summary: Summary) -> None:
        if time.monotonic() - self.last >= self.every_s:
            self._line(summary)
            self.last = time.monotonic()

    def stop(self, summary: Summary) -> None:
        self._line(summary)


def progress_for(console: Console, run_id: str, plain: bool | None = None) -> ProgressSink:
    use_plain = (not console.is_terminal) if plain is None else plain
    return PlainProgress(console, run_id) if use_plain else RichProgress(console, run_id)
