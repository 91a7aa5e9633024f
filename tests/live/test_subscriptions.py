"""The subscription manager's notifications: a watcher whose client waits on the result to
acknowledge its own write is called before the others (a fan-out's writer goes first)."""

from __future__ import annotations

from typing import Any

from reactive_store.live.subscriptions import LiveQuery, SubscriptionManager


class Watcher:
    def __init__(self, name: str, calls: list[str], urgent: bool = False) -> None:
        self.name, self.calls, self.urgent = name, calls, urgent

    def __call__(self) -> None:
        self.calls.append(self.name)


def notify(live: LiveQuery, *urgent: Watcher) -> None:
    manager = SubscriptionManager(None)  # type: ignore[arg-type]  # notifying runs nothing
    for watcher in urgent:
        manager.mark_urgent(watcher)
    manager._notify(live)


def test_urgent_watchers_are_called_first_and_everyone_once() -> None:
    calls: list[str] = []
    live = LiveQuery(("q", "[]", None, False, None), "q", [], None, False)  # type: ignore[arg-type]
    plain = [Watcher(f"w{i}", calls) for i in range(50)]
    writer = Watcher("writer", calls, urgent=True)
    live.watchers.update([*plain[:25], writer, *plain[25:]])
    notify(live, writer)
    assert calls[0] == "writer"
    assert sorted(calls) == sorted(["writer", *(w.name for w in plain)])


def test_plain_callables_are_called_as_before() -> None:
    calls: list[str] = []
    live = LiveQuery(("q", "[]", None, False, None), "q", [], None, False)  # type: ignore[arg-type]
    live.watchers.update([lambda: calls.append("a"), lambda: calls.append("b")])
    notify(live)
    assert sorted(calls) == ["a", "b"]


def test_the_notify_scope_wraps_the_plain_watchers_not_the_urgent_ones() -> None:
    """The sync endpoint holds socket writes during a pass (server/socket_writes.py): the
    writer's own socket is written before the pass, the others after it."""
    from collections.abc import Iterator
    from contextlib import contextmanager

    calls: list[str] = []
    manager = SubscriptionManager(None)  # type: ignore[arg-type]

    @contextmanager
    def scope() -> Iterator[None]:
        calls.append("open")
        yield
        calls.append("close")

    manager.notify_scope = scope
    live = LiveQuery(("q", "[]", None, False, None), "q", [], None, False)  # type: ignore[arg-type]
    writer = Watcher("writer", calls, urgent=True)
    live.watchers.update([Watcher("a", calls), writer, Watcher("b", calls)])
    manager.mark_urgent(writer)
    manager._notify(live)
    assert calls[:2] == ["writer", "open"] and calls[-1] == "close"
    assert sorted(calls[2:4]) == ["a", "b"]


def test_a_watcher_no_longer_urgent_or_gone_is_dropped_from_the_urgent_ones() -> None:
    calls: list[str] = []
    manager = SubscriptionManager(None)  # type: ignore[arg-type]
    live = LiveQuery(("q", "[]", None, False, None), "q", [], None, False)  # type: ignore[arg-type]
    writer, gone = Watcher("writer", calls, urgent=True), Watcher("gone", calls, urgent=True)
    live.watchers.update([writer, gone])
    manager.mark_urgent(writer)
    manager.mark_urgent(gone)
    manager.forget_urgent(gone)
    assert manager._urgent == {writer}
    writer.urgent = False  # its Transition went out
    manager._notify(live)
    assert manager._urgent == set()
    assert sorted(calls) == ["gone", "writer"]


async def test_an_invalidated_result_calls_no_watcher_until_the_next_result(
        make_app: Any, serve: Any) -> None:
    """Invalidation lets no session send anything new, so it wakes no socket: each commit
    that changes a result calls its watchers once, when the new result is in."""
    from tests.support import ACCOUNTS_APP

    _, deployment = await serve(make_app(ACCOUNTS_APP))
    manager = deployment.subscriptions
    calls: list[str] = []
    watcher = Watcher("w", calls)
    live = manager.subscribe("accounts:total", {}, None, watcher)
    await manager.settled()
    assert calls == ["w"]
    for n in range(1, 4):
        ts = (await deployment.engine.run_mutation(
            "accounts:open", {"owner": f"o{n}", "balance": n}, None)).ts
        assert ts is not None
        await manager.settled(ts)
        assert live.runs == n + 1
        assert calls == ["w"] * (n + 1), "called once per new result, never on invalidation"
    manager.unsubscribe(live, watcher)
