"""Instance ids next to the database: the same id after a restart, another for a second live
server, and whether a worker id's server is gone."""

from __future__ import annotations

from pathlib import Path

from coderchat_ext.models import new_id
from coderchat_ext.store.instance import InstanceSlots


def test_a_restarted_server_gets_its_previous_id_back(tmp_path: Path) -> None:
    first = InstanceSlots(tmp_path / "chat.db")
    before = first.claim()
    first.release()
    again = InstanceSlots(tmp_path / "chat.db")
    assert again.claim() == before
    again.release()


def test_a_second_live_server_gets_another_id(tmp_path: Path) -> None:
    first = InstanceSlots(tmp_path / "chat.db")
    second = InstanceSlots(tmp_path / "chat.db")
    assert first.claim() != second.claim()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.db.worker-0", "chat.db.worker-1"]
    first.release()
    second.release()


def test_a_worker_is_gone_once_its_server_released_its_slot(tmp_path: Path) -> None:
    other = InstanceSlots(tmp_path / "chat.db")
    other_id = other.claim()
    me = InstanceSlots(tmp_path / "chat.db")
    my_id = me.claim()
    assert not me.is_gone(other_id)
    assert not me.is_gone(my_id)
    assert not me.is_gone(new_id()), "an id of no slot here is not known to be gone"
    other.release()
    assert me.is_gone(other_id)
    me.release()


def test_an_in_memory_database_has_no_slots(tmp_path: Path) -> None:
    slots = InstanceSlots(":memory:")
    worker_id = slots.claim()
    assert worker_id == slots.claim()
    assert not slots.is_gone(new_id())
    assert list(tmp_path.iterdir()) == []
