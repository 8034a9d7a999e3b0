"""Server instance ids, kept on disk next to the database (docs/status-machine.md: crash recovery).

A server's daemon writes its instance id into ``chats.worker_id``. The id lives in a *slot file*
``<database>.worker-<n>`` that the server holds locked (``flock``) while it runs. The kernel drops
the lock when the process ends, however it ends (SIGKILL included), so:

- a server that restarts after a crash claims the same slot, reads the same id, and knows that
  every chat still ``running`` under that id is an orphan of its previous life;
- any server on the machine can tell whether a worker id belongs to a live server (its slot is
  locked) or to one that is gone (its slot is free), without waiting for heartbeats to go stale.

A second server on the same database takes the next free slot, hence another id. Locks are local
to one machine, like SQLite's own locking: a worker id found in no slot file here (another
machine's, or a random id from before slots existed) is *unknown*, and only a stale heartbeat
says it is gone.
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from pathlib import Path

from .db import is_storage_full

log = logging.getLogger(__name__)


class InstanceSlots:
    """The slot files of one database. :meth:`claim` this server's id at start, :meth:`release`
    it at stop; :meth:`is_gone` tells whether another worker id's server is gone.

    ``db_path`` is the database file (``":memory:"`` has no slots: :meth:`claim` returns a
    random id and :meth:`is_gone` always answers ``False``).
    """

    def __init__(self, db_path: str | Path) -> None:
        path = str(db_path)
        self._stem = None if path == ":memory:" else Path(path)
        self._fd: int | None = None
        self.id: str | None = None
        """The claimed id (``None`` before :meth:`claim`)."""

    def _slot(self, n: int) -> Path:
        assert self._stem is not None
        return self._stem.with_name(f"{self._stem.name}.worker-{n}")

    def claim(self) -> str:
        """Lock the first free slot and return its id, writing a new UUID into a slot used for
        the first time. Idempotent until :meth:`release`. When a full disk keeps the new id
        from being written, the id is a random one that no later start will recognize: its
        chats are then recovered as stale (``stale_after``), the behaviour without slots.
        Raises ``OSError`` when the database folder cannot be used at all."""
        if self.id is not None:
            return self.id
        if self._stem is None:
            self.id = str(uuid.uuid4())
            return self.id
        self._stem.parent.mkdir(parents=True, exist_ok=True)
        n = 0
        while True:
            fd = os.open(self._slot(n), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                n += 1
                continue
            break
        try:
            text = os.read(fd, 64).decode("ascii", "replace").strip()
            if not _is_uuid(text):
                text = str(uuid.uuid4())
                os.ftruncate(fd, 0)
                os.pwrite(fd, text.encode("ascii"), 0)
                os.fsync(fd)
        except OSError as exc:
            if not is_storage_full(exc):
                raise
            log.warning("cannot write %s (%s): using an unrecorded instance id", self._slot(n), exc)
            os.close(fd)
            self.id = str(uuid.uuid4())
            return self.id
        self._fd = fd
        self.id = text
        return text

    def release(self) -> None:
        """Unlock this server's slot (at stop, after its chats were released); a later
        :meth:`claim` locks a slot again."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.id = None

    def is_gone(self, worker_id: str) -> bool:
        """Whether ``worker_id`` is the id of a slot that no live server holds. ``False`` for
        this server's own id, for a slot held by another server, and for an id of no slot."""
        if self._stem is None or worker_id == self.id:
            return False
        for path in self._stem.parent.glob(f"{self._stem.name}.worker-*"):
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                if os.read(fd, 64).decode("ascii", "replace").strip() != worker_id:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                return True
            finally:
                os.close(fd)
        return False


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
