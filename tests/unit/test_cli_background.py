"""The deliverers' loop (``unsubsvc.cli.background.poll_until_stopped``): it outlives a database."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from unsubsvc.cli import background


class Script:
    """Steps and purges that fail when told, and a stop after a number of steps."""

    def __init__(self, failing_steps: set[int], failing_purges: set[int], stop_after: int) -> None:
        self.failing_steps, self.failing_purges = failing_steps, failing_purges
        self.stop_after = stop_after
        self.steps: list[int] = []
        self.purges: list[int] = []

    def step(self) -> None:
        self.steps.append(len(self.steps) + 1)
        if self.steps[-1] in self.failing_steps:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection\nSQL"))

    def purge(self) -> None:
        self.purges.append(len(self.steps))
        if len(self.purges) in self.failing_purges:
            raise OperationalError("DELETE", {}, Exception("the database system is starting up"))

    def stopped(self) -> bool:
        return len(self.steps) >= self.stop_after


def test_a_database_error_is_reported_and_the_loop_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = Script(failing_steps={2}, failing_purges={1}, stop_after=4)
    background.poll_until_stopped("Mail", 0.05, script.stopped, script.step, script.purge)
    assert script.steps == [1, 2, 3, 4]
    assert script.purges == [1]  # at the start, then not again within PURGE_INTERVAL
    lines = capsys.readouterr().err.splitlines()
    # One line each, the driver's SQL left out: the purge's error first, then step 2's.
    assert len(lines) == 2
    assert all(line.startswith("Mail: database error, will retry: ") for line in lines)
    assert "starting up" in lines[0] and "server closed the connection" in lines[1]


def test_purge_runs_again_after_its_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(background, "PURGE_INTERVAL", 0.0)
    script = Script(failing_steps=set(), failing_purges=set(), stop_after=3)
    background.poll_until_stopped("Webhooks", 0.05, script.stopped, script.step, script.purge)
    assert script.purges == [1, 2, 3]


@pytest.mark.parametrize(
    ("message", "line"),
    [("first\nSELECT secret", "first"), ("  padded  ", "padded"), ("", "RuntimeError")],
)
def test_first_line_keeps_only_the_message(message: str, line: str) -> None:
    assert background.first_line(RuntimeError(message)) == line
