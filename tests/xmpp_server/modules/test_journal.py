"""The delivery journal's bookkeeping: which writes reach storage, and when flush returns."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from storage.offline import JournalWrite
from xmpp_server.modules.offline.journal import Journal


class Recorder:
    """Stands for the offline table: records what would be written, can fail on demand."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, str, str | None]]] = []
        self.failures = 0

    async def __call__(self, writes: Sequence[JournalWrite]) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("database away")
        self.batches.append([(w.action, w.stanza_id, w.held) for w in writes])

    @property
    def writes(self) -> list[tuple[str, str, str | None]]:
        return [w for batch in self.batches for w in batch]


@pytest.fixture
async def journal() -> tuple[Journal, Recorder, list[set[str]]]:
    recorder = Recorder()
    waiting: list[set[str]] = []
    j = Journal(recorder, "me", waiting.append, delay=0.001)
    j.start()
    yield j, recorder, waiting
    await j.stop()


async def test_acknowledged_before_its_batch_never_touches_storage(journal) -> None:
    j, recorder, _ = journal
    j.hold("bob", "s1", b"<message/>")
    j.acked("bob", ["s1"])
    await j.flush()
    assert recorder.writes == []
    assert len(j) == 0


async def test_held_then_acknowledged(journal) -> None:
    j, recorder, _ = journal
    j.hold("bob", "s1", b"<message/>")
    await j.flush()
    assert recorder.writes == [("insert", "s1", "me")]
    j.acked("bob", ["s1"])
    await j.flush()
    assert recorder.writes[-1] == ("delete", "s1", None)
    assert len(j) == 0


async def test_waits_once_every_holder_has_ended(journal) -> None:
    j, recorder, waiting = journal
    j.hold("bob", "s1", b"<message/>")  # two sessions of bob got it
    j.hold("bob", "s1", b"<message/>")
    await j.flush()
    j.dropped("bob", ["s1"])
    await j.flush()
    assert recorder.writes == [("insert", "s1", "me")]  # the other session still holds it
    j.dropped("bob", ["s1"])
    await j.flush()
    assert recorder.writes[-1] == ("hold", "s1", None)  # waits in offline storage
    assert waiting == [{"bob"}]
    assert not j.knows("bob", "s1")


async def test_stored_message_delivered_from_offline_storage(journal) -> None:
    j, recorder, _ = journal
    j.adopt("bob", "plain")  # written to a session without stream management
    j.settle("bob", "plain", delivered=True)
    j.adopt("bob", "sm")  # written to a stream-management session: held in place
    j.hold("bob", "sm", b"<message/>")
    j.settle("bob", "sm", delivered=False)
    await j.flush()
    assert sorted(recorder.writes) == [("delete", "plain", None), ("hold", "sm", "me")]


async def test_flush_waits_through_failures(journal) -> None:
    j, recorder, _ = journal
    recorder.failures = 2
    j.hold("bob", "s1", b"<message/>")
    await asyncio.wait_for(j.flush(), 5)  # retried with backoff, then written
    assert recorder.writes == [("insert", "s1", "me")]
    assert j.stats["failures"] == 2
