"""A model of commit ordering without a lock held through COMMIT (docs/architecture.md).

Mutations commit with no timestamp; a sequencer, serialised by a lock held through its own
COMMIT, later gives every committed-but-unsequenced commit the next timestamps in one batch.
Commits become visible in any order. A query snapshot is labelled with the newest
timestamp it sees, and may also see "extras": committed commits not yet sequenced in its
view, whose timestamps will be higher. The rule under test: a result is usable at its label
only when no extra wrote a key it read. Random interleavings of commits, visibility,
sequencer batches and snapshots check that every usable result equals the state made of
exactly the commits with timestamps up to its label, and that dropping the rule breaks it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

KEYS = ["a", "b", "c", "d"]


@dataclass
class Commit:
    xid: int
    writes: dict[str, int]
    visible: bool = False
    ts: int | None = None  # assigned by a sequencer batch
    batch: int | None = None


@dataclass
class World:
    rng: random.Random
    commits: list[Commit] = field(default_factory=list)
    next_xid: int = 1
    next_ts: int = 100
    batches_committed: int = 0  # batches whose assignments are visible
    pending_batch: list[Commit] | None = None  # holds the lock: assigned, not yet committed
    violations: int = 0
    checked: int = 0

    def writer_may_start(self, key: str) -> bool:
        # SERIALIZABLE: a second writer of a key sees the first one's commit, so it can start
        # (and take its xid) only once every earlier writer of that key is visible.
        return all(c.visible for c in self.commits if key in c.writes)

    def start_commit(self) -> None:
        keys = [k for k in self.rng.sample(KEYS, self.rng.randint(1, 2))
                if self.writer_may_start(k)]
        if keys:
            self.commits.append(Commit(self.next_xid, {k: self.next_xid for k in keys}))
            self.next_xid += 1

    def make_visible(self) -> None:
        # Commits become visible in any order, whatever the order of their xids.
        hidden = [c for c in self.commits if not c.visible]
        if hidden:
            self.rng.choice(hidden).visible = True

    def sequence(self) -> None:
        """Batch start (lock taken, statement snapshot) or batch COMMIT, alternately."""
        if self.pending_batch is None:
            batch = sorted((c for c in self.commits if c.visible and c.ts is None),
                           key=lambda c: c.xid)
            for c in batch:
                c.ts, c.batch = self.next_ts, self.batches_committed
                self.next_ts += 1
            self.pending_batch = batch
        else:
            self.batches_committed += 1  # its assignments become visible; lock released
            self.pending_batch = None

    def snapshot(self, check_extras: bool) -> None:
        seen = [c for c in self.commits if c.visible]
        sequenced = [c for c in seen if c.batch is not None and c.batch < self.batches_committed]
        label = max((c.ts for c in sequenced if c.ts is not None), default=0)
        extras = [c for c in seen if c not in sequenced]
        reads = set(self.rng.sample(KEYS, self.rng.randint(1, 3)))
        if check_extras and any(reads & set(c.writes) for c in extras):
            return  # not usable at its label: re-run once the extras are sequenced
        # What the snapshot shows: the last visible writer of each key (writers of one key
        # become visible in xid order, by the SERIALIZABLE rule above).
        shown = {k: max((c.xid for c in seen if k in c.writes), default=0) for k in reads}
        self.results.append((label, shown))

    results: list[tuple[int, dict[str, int]]] = field(default_factory=list)

    def verify(self) -> None:
        """Once everything is sequenced: each result is the state at its label."""
        for label, shown in self.results:
            upto = sorted((c for c in self.commits if c.ts is not None and c.ts <= label),
                          key=lambda c: c.ts or 0)
            state: dict[str, int] = {}
            for c in upto:
                state.update(c.writes)
            self.checked += 1
            if any(state.get(k, 0) != v for k, v in shown.items()):
                self.violations += 1


def run(seed: int, steps: int, check_extras: bool) -> World:
    world = World(random.Random(seed))
    actions = [world.start_commit, world.make_visible, world.make_visible, world.sequence,
               lambda: world.snapshot(check_extras)]
    for _ in range(steps):
        world.rng.choice(actions)()
    while any(not c.visible for c in world.commits):
        world.make_visible()
    for _ in range(2):  # finish a batch in flight, then sequence what is left
        world.sequence()
        if world.pending_batch is not None:
            world.sequence()
    assert all(c.ts is not None for c in world.commits)
    world.verify()
    return world


@pytest.mark.parametrize("seed", range(40))
def test_usable_results_are_the_state_at_their_label(seed: int) -> None:
    world = run(seed, 400, check_extras=True)
    assert world.checked > 5
    assert world.violations == 0


def test_without_the_extras_rule_results_can_be_ahead_of_their_label() -> None:
    """The model can fail: labelling a snapshot that saw an unsequenced commit is wrong."""
    assert sum(run(seed, 400, check_extras=False).violations for seed in range(40)) > 0


@pytest.mark.parametrize("seed", range(10))
def test_timestamps_follow_visibility_to_the_sequencer(seed: int) -> None:
    """Sequenced in batches under the lock: a batch's commits were all visible before any
    later batch started, and within a batch xids order writers of one key."""
    world = run(seed, 400, check_extras=True)
    by_key: dict[str, list[Commit]] = {}
    for c in sorted(world.commits, key=lambda c: c.ts or 0):
        for k in c.writes:
            by_key.setdefault(k, []).append(c)
    for writers in by_key.values():
        assert [c.xid for c in writers] == sorted(c.xid for c in writers)
