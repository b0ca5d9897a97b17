"""Durable storage behind one interface: SQLite (embedded default) or PostgreSQL."""

from __future__ import annotations

from omniroute.errors import InvalidInputError
from omniroute.store.kept import Kept
from omniroute.store.records import (
    ApiToken,
    Attachment,
    Conversation,
    ConversationDetail,
    Customer,
    CustomerContext,
    Delivery,
    EngineSnapshot,
    IdentityRecord,
    Interaction,
    InteractionPatch,
    LogEntry,
    Merge,
    Message,
    Note,
    Role,
    Session,
    StoredEvent,
    TimelineEntry,
    User,
)
from omniroute.store.sql import Reader, SqlStore, StoreError, Writer

__all__ = [
    "ApiToken",
    "Attachment",
    "Conversation",
    "ConversationDetail",
    "Customer",
    "CustomerContext",
    "Delivery",
    "EngineSnapshot",
    "IdentityRecord",
    "Interaction",
    "InteractionPatch",
    "Kept",
    "LogEntry",
    "Merge",
    "Message",
    "Note",
    "Reader",
    "Role",
    "Session",
    "SqlStore",
    "StoreError",
    "StoredEvent",
    "TimelineEntry",
    "User",
    "Writer",
    "open_store",
]


def open_store(url: str, *, migrate: bool = True) -> SqlStore:
    """The store at ``url`` (``sqlite:///path.db`` or ``postgresql://...``),
    its schema brought up to date unless ``migrate=False``."""
    store: SqlStore
    if url.startswith("sqlite:"):
        from omniroute.store.sqlite import SqliteStore

        store = SqliteStore(url)
    elif url.startswith(("postgresql:", "postgres:")):
        from omniroute.store.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        raise InvalidInputError(f"store: {url!r} is neither sqlite:///path nor postgresql://host/database")
    if migrate:
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
    return store
