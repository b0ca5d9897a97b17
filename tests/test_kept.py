"""A customer's context read through what the store keeps decoded
(``omniroute/store/kept.py``) is exactly the context read whole, whatever
was written in between and by whichever store: on both backends."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from omniroute.config import load_settings
from omniroute.errors import InvalidConfigError, InvalidInputError
from omniroute.runtime import Runtime, RuntimeSettings
from omniroute.store import InteractionPatch, Kept, SqlStore, Writer, open_store
from test_store import T0, conversation, customer, identity, interaction, message, note


@pytest.fixture
def whole(store_url: str, store: SqlStore) -> Iterator[SqlStore]:
    """A second store on the same database that keeps nothing: it reads every context whole."""
    with open_store(store_url) as opened:
        opened.kept = Kept(0)
        yield opened


def keep_everything(store: SqlStore, capacity: int = 100_000) -> None:
    """Keep even the shortest timelines and transcripts, so small tests use what is kept."""
    store.kept = Kept(capacity, smallest=1)


def same_context(store: SqlStore, whole: SqlStore, customer_id: str, limit: int | None = None) -> bytes:
    with store.read() as r:
        kept = msgspec.json.encode(r.context(customer_id, limit=limit))
    with whole.read() as r:
        read_whole = msgspec.json.encode(r.context(customer_id, limit=limit))
    assert kept == read_whole
    return kept


def seed(w: Writer) -> None:
    w.add_customers([customer("ann"), customer("bob", T0 + 1)])
    w.add_identities(
        [identity("email", "ann@example.com", "ann"), identity("email", "bob@example.com", "bob")]
    )
    w.add_conversations([conversation("c-ann", "ann"), conversation("c-bob", "bob", T0 + 1)])


def test_what_is_kept_is_brought_up_to_date_by_any_write_from_any_store(
    store: SqlStore, whole: SqlStore
) -> None:
    keep_everything(store)
    rng = random.Random(7)
    with store.write() as w:
        seed(w)
    finished: list[tuple[str, str]] = []  # (interaction, its owner when written)
    live: list[str] = []
    merges: list[str] = []
    for step in range(160):
        counter = step + 1
        # Writes come through the store that keeps, or through the other one.
        writer = store if rng.random() < 0.5 else whole
        owner = rng.choice(["ann", "ann", "bob"])
        at = T0 + rng.uniform(0, 10_000)
        action = rng.choice(["finished", "finished", "open", "finish", "note", "message", "message", "merge"])
        with writer.write() as w:
            if action == "finished":
                iid = f"i{counter}"
                w.add_interactions(
                    [
                        interaction(
                            iid, f"c-{owner}", owner, at, status="completed", agent="a1", ended_at=at + 60
                        )
                    ]
                )
                finished.append((iid, owner))
            elif action == "open":
                iid = f"i{counter}"
                w.add_interactions([interaction(iid, f"c-{owner}", owner, at)])
                live.append(iid)
            elif action == "finish" and live:
                iid = live.pop(rng.randrange(len(live)))
                w.patch_interactions([InteractionPatch(id=iid, status="abandoned", ended_at=at)])
                finished.append((iid, w.interaction(iid).customer_id))
            elif action == "note" and finished:
                iid, _ = rng.choice(finished)
                w.add_notes([note(f"n{counter}", w.interaction(iid).customer_id, iid, at)])
            elif action == "message":
                on = rng.choice([i for i, _ in finished] or ["none"])
                if on != "none":
                    conv = w.interaction(on).conversation_id
                    # Any time: a message may be stored after later ones.
                    w.add_messages([message(f"m{counter}", on, conv, at)])
            elif action == "merge":
                if merges and rng.random() < 0.5:
                    w.undo_merge(merges.pop(), at)
                elif not merges:
                    merges.append(w.merge_customers("ann", "bob", at).id)
        for who in ("ann", "bob"):
            same_context(store, whole, who)
            if step % 7 == 0:
                same_context(store, whole, who, limit=3)
    assert store.kept.hits > 100
    assert store.kept.size > 0
    # The other store never kept anything.
    assert whole.kept.size == 0


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_reader_older_than_what_is_kept_reads_its_own_snapshot(store: SqlStore, whole: SqlStore) -> None:
    keep_everything(store)
    with store.write() as w:
        seed(w)
        w.add_interactions(
            [
                interaction(f"i{n}", "c-ann", "ann", T0 + n, status="completed", ended_at=T0 + n + 1)
                for n in range(5)
            ]
        )
    first = same_context(store, whole, "ann")
    started, written, seen = threading.Event(), threading.Event(), []

    def old_reader() -> None:
        with store.read() as r:
            seen.append(msgspec.json.encode(r.context("ann")))
            started.set()
            assert written.wait(30)
            # Everything kept is newer than this transaction now.
            seen.append(msgspec.json.encode(r.context("ann")))

    thread = threading.Thread(target=old_reader)
    thread.start()
    try:
        assert started.wait(30)
        with store.write() as w:
            # As many records as before, one of them rewritten.
            w.add_notes([note("n1", "ann", "i2", T0 + 20)])
        newer = same_context(store, whole, "ann")
        assert newer != first
    finally:
        written.set()
        thread.join(30)
    assert seen == [first, first]


def test_what_is_kept_stays_within_its_capacity(store: SqlStore, whole: SqlStore) -> None:
    keep_everything(store, capacity=150)
    with store.write() as w:
        seed(w)
        w.add_customers([customer("cat", T0 + 2)])
        w.add_conversations([conversation("c-cat", "cat", T0 + 2)])
        for owner in ("ann", "bob", "cat"):
            w.add_interactions(
                [
                    interaction(
                        f"{owner}{n}", f"c-{owner}", owner, T0 + n, status="completed", ended_at=T0 + n
                    )
                    for n in range(60)
                ]
            )
            w.add_messages([message(f"m-{owner}{n}", f"{owner}{n}", f"c-{owner}", T0 + n) for n in range(20)])
    for _ in range(2):
        for owner in ("ann", "bob", "cat"):
            same_context(store, whole, owner)
            assert store.kept.size <= 150
    # The least recently used went first: the last customer read is kept, the first is not.
    assert store.kept.timeline("cat") is not None
    assert store.kept.transcript("c-cat") is not None
    assert store.kept.timeline("ann") is None


def test_the_runtime_keeps_what_its_settings_say_and_refuses_a_negative_size(
    store: SqlStore, tmp_path: Path
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text("context_kept_entries = -1\n")
    with pytest.raises(InvalidConfigError, match=r"context_kept_entries: expected a whole number ≥ 0"):
        load_settings(settings)
    with pytest.raises(InvalidInputError, match=r"^context_kept_entries: -1 is negative"):
        Kept(-1)
    Runtime(store, settings=RuntimeSettings(context_kept_entries=5000))
    assert store.kept.capacity == 5000
    with store.write() as w:
        seed(w)
    with store.read() as r, pytest.raises(InvalidInputError, match=r"^limit: -2 is negative"):
        r.context("ann", limit=-2)


def test_a_write_reads_what_it_has_not_committed_and_keeps_none_of_it(
    store: SqlStore, whole: SqlStore
) -> None:
    keep_everything(store)
    with store.write() as w:
        seed(w)
        w.add_interactions([interaction("i1", "c-ann", "ann", T0, status="completed", ended_at=T0 + 1)])
    before = same_context(store, whole, "ann")
    store.kept.clear()

    def write_and_change_my_mind() -> None:
        with store.write() as w:
            w.add_interactions(
                [interaction("i2", "c-ann", "ann", T0 + 5, status="completed", ended_at=T0 + 6)]
            )
            assert [e.interaction.id for e in w.context("ann").timeline] == ["i2", "i1"]
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        write_and_change_my_mind()
    assert store.kept.size == 0
    assert same_context(store, whole, "ann") == before
