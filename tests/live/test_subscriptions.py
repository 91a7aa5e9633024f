"""The subscription manager's notifications: a watcher whose client waits on the result to
acknowledge its own write is called before the others (a fan-out's writer goes first)."""

from __future__ import annotations

from reactive_store.live.subscriptions import LiveQuery, SubscriptionManager


class Watcher:
    def __init__(self, name: str, calls: list[str], urgent: bool = False) -> None:
        self.name, self.calls, self.urgent = name, calls, urgent

    def __call__(self) -> None:
        self.calls.append(self.name)


def notify(live: LiveQuery) -> None:
    SubscriptionManager._notify(None, live)  # type: ignore[arg-type]  # uses no state


def test_urgent_watchers_are_called_first_and_everyone_once() -> None:
    calls: list[str] = []
    live = LiveQuery(("q", "[]", None, False, None), "q", [], None, False)  # type: ignore[arg-type]
    plain = [Watcher(f"w{i}", calls) for i in range(50)]
    writer = Watcher("writer", calls, urgent=True)
    live.watchers.update([*plain[:25], writer, *plain[25:]])
    notify(live)
    assert calls[0] == "writer"
    assert sorted(calls) == sorted(["writer", *(w.name for w in plain)])


def test_plain_callables_are_called_as_before() -> None:
    calls: list[str] = []
    live = LiveQuery(("q", "[]", None, False, None), "q", [], None, False)  # type: ignore[arg-type]
    live.watchers.update([lambda: calls.append("a"), lambda: calls.append("b")])
    notify(live)
    assert sorted(calls) == ["a", "b"]
