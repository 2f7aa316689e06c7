"""The drain's bookkeeping (http/drain.py): which connections it may close, and which answers still
to come say `Connection: close`. The real process under load: tests/integration/server/test_lifecycle.py."""

from __future__ import annotations

from dataclasses import dataclass, field

from model_server.http.drain import Drain


@dataclass
class Cycle:
    response_started: bool = False
    response_complete: bool = False
    keep_alive: bool = True


@dataclass
class Connection:
    last_activity: float
    cycle: Cycle | None = field(default=None)


def test_settled_only_when_every_connection_has_been_idle_long_enough() -> None:
    drain = Drain(idle_seconds=2.0)
    done = Cycle(response_started=True, response_complete=True)
    assert drain.settled([], now=100.0)
    assert drain.settled([Connection(97.0), Connection(98.0, done)], now=100.0)
    assert not drain.settled([Connection(97.0), Connection(98.5, done)], now=100.0)
    # A request being answered is never idle, however long ago its connection was last read.
    assert not drain.settled([Connection(50.0, Cycle(response_started=True))], now=100.0)


def test_begin_closes_after_the_answers_not_started_yet_only() -> None:
    drain = Drain(idle_seconds=2.0)
    waiting, writing, done = Cycle(), Cycle(response_started=True), Cycle(True, True)
    drain.begin([Connection(0.0, waiting), Connection(0.0, writing), Connection(0.0, done), Connection(0.0)])
    assert drain.active
    assert waiting.keep_alive is False
    # Its headers already said keep-alive: closing after it would be closing under the client.
    assert writing.keep_alive is True
    assert done.keep_alive is True
