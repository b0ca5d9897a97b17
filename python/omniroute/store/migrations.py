"""The schema, as numbered migrations applied in order, each in its own transaction."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIGRATIONS", "Migration", "latest_version"]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    # SQL statements; ``{blob}`` is the dialect's binary type.
    statements: tuple[str, ...]
    # Tables whose ``record`` column the store rebuilds from the rows after
    # the statements, in the same transaction (records are MessagePack, which
    # SQL cannot write).
    reseal: tuple[str, ...] = ()


# Version 1 is the first released schema. Never edit a released migration:
# add the next one. tests/test_store.py upgrades a version-1 database
# holding data to the latest version and checks that nothing was lost.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "customers, identities, conversations, interactions, messages, notes, attachments, "
        "configuration, event log, engine log and snapshots",
        (
            """CREATE TABLE customers (
                id TEXT PRIMARY KEY,
                created_at DOUBLE PRECISION NOT NULL,
                display_name TEXT,
                attributes TEXT NOT NULL DEFAULT '{{}}',
                merged_into TEXT REFERENCES customers(id))""",
            """CREATE TABLE identities (
                kind TEXT NOT NULL,
                value TEXT NOT NULL,
                customer_id TEXT NOT NULL REFERENCES customers(id),
                created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (kind, value))""",
            "CREATE INDEX identities_customer ON identities (customer_id)",
            """CREATE TABLE conversations (
                id TEXT PRIMARY KEY,
                customer_id TEXT NOT NULL REFERENCES customers(id),
                opened_at DOUBLE PRECISION NOT NULL,
                last_activity_at DOUBLE PRECISION NOT NULL,
                closed_at DOUBLE PRECISION)""",
            "CREATE INDEX conversations_customer ON conversations (customer_id, opened_at)",
            """CREATE TABLE interactions (
                id TEXT PRIMARY KEY,
                conversation_id TEXT NOT NULL REFERENCES conversations(id),
                customer_id TEXT NOT NULL REFERENCES customers(id),
                channel TEXT NOT NULL,
                direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
                queue TEXT NOT NULL,
                status TEXT NOT NULL,
                priority BIGINT NOT NULL DEFAULT 0,
                agent TEXT,
                created_at DOUBLE PRECISION NOT NULL,
                queued_at DOUBLE PRECISION,
                offered_at DOUBLE PRECISION,
                answered_at DOUBLE PRECISION,
                ended_at DOUBLE PRECISION,
                wrap_up_ended_at DOUBLE PRECISION,
                disposition TEXT,
                outcome TEXT,
                subject TEXT,
                attributes TEXT NOT NULL DEFAULT '{{}}')""",
            "CREATE INDEX interactions_customer ON interactions (customer_id, created_at)",
            "CREATE INDEX interactions_conversation ON interactions (conversation_id)",
            """CREATE TABLE messages (
                id TEXT PRIMARY KEY,
                interaction_id TEXT NOT NULL REFERENCES interactions(id),
                conversation_id TEXT NOT NULL REFERENCES conversations(id),
                at DOUBLE PRECISION NOT NULL,
                direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
                author TEXT NOT NULL,
                body TEXT NOT NULL,
                content_type TEXT NOT NULL)""",
            "CREATE INDEX messages_interaction ON messages (interaction_id, at)",
            """CREATE TABLE notes (
                id TEXT PRIMARY KEY,
                customer_id TEXT NOT NULL REFERENCES customers(id),
                interaction_id TEXT REFERENCES interactions(id),
                author TEXT NOT NULL,
                at DOUBLE PRECISION NOT NULL,
                body TEXT NOT NULL)""",
            "CREATE INDEX notes_customer ON notes (customer_id, at)",
            """CREATE TABLE attachments (
                id TEXT PRIMARY KEY,
                message_id TEXT NOT NULL REFERENCES messages(id),
                filename TEXT NOT NULL,
                content_type TEXT NOT NULL,
                size BIGINT NOT NULL,
                sha256 TEXT NOT NULL,
                location TEXT NOT NULL)""",
            "CREATE INDEX attachments_message ON attachments (message_id)",
            "CREATE TABLE config_channels (name TEXT PRIMARY KEY, body TEXT NOT NULL)",
            "CREATE TABLE config_queues (name TEXT PRIMARY KEY, body TEXT NOT NULL)",
            "CREATE TABLE config_agents (id TEXT PRIMARY KEY, body TEXT NOT NULL)",
            """CREATE TABLE agent_skills (
                agent TEXT NOT NULL REFERENCES config_agents(id) ON DELETE CASCADE,
                skill TEXT NOT NULL,
                level BIGINT NOT NULL,
                PRIMARY KEY (agent, skill))""",
            "CREATE TABLE config_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE events (
                seq BIGINT PRIMARY KEY,
                type TEXT NOT NULL,
                time DOUBLE PRECISION NOT NULL,
                subject TEXT NOT NULL,
                data {blob} NOT NULL)""",
            """CREATE TABLE engine_log (
                seq BIGINT PRIMARY KEY,
                now DOUBLE PRECISION NOT NULL,
                inputs {blob} NOT NULL,
                metrics {blob})""",
            """CREATE TABLE engine_snapshots (
                log_seq BIGINT PRIMARY KEY,
                event_seq BIGINT NOT NULL,
                taken_at DOUBLE PRECISION NOT NULL,
                engine {blob} NOT NULL,
                metrics {blob} NOT NULL)""",
        ),
    ),
    Migration(
        2,
        "customer merges that can be undone; the offer an interaction is waiting on; "
        "finding an agent's interactions in wrap-up",
        (
            """CREATE TABLE customer_merges (
                id TEXT PRIMARY KEY,
                survivor TEXT NOT NULL REFERENCES customers(id),
                merged TEXT NOT NULL REFERENCES customers(id),
                at DOUBLE PRECISION NOT NULL,
                moved TEXT NOT NULL,
                undone_at DOUBLE PRECISION)""",
            "CREATE INDEX customer_merges_merged ON customer_merges (merged)",
            "ALTER TABLE interactions ADD COLUMN offer BIGINT",
            "CREATE INDEX interactions_agent_status ON interactions (agent, status)",
            "CREATE INDEX interactions_status ON interactions (status)",
        ),
    ),
    Migration(
        3,
        "a customer's context read in index order: the timeline, notes and open transcript "
        "without sorting, and the last agent who answered without a scan",
        (
            # Two indexes gain their ORDER BY's tie-breaker (id) and replace the
            # ones they extend; the transcript's and the last agent's are new.
            "DROP INDEX interactions_customer",
            "CREATE INDEX interactions_customer_created ON interactions (customer_id, created_at, id)",
            "DROP INDEX notes_customer",
            "CREATE INDEX notes_customer_at ON notes (customer_id, at, id)",
            "CREATE INDEX messages_conversation ON messages (conversation_id, at, id)",
            "CREATE INDEX interactions_customer_answered ON interactions (customer_id, answered_at)",
        ),
    ),
    Migration(
        4,
        "the event log in pages: the events of one batch in one row (events written by "
        "earlier versions stay in the events table and are read first)",
        (
            """CREATE TABLE event_pages (
                first_seq BIGINT PRIMARY KEY,
                last_seq BIGINT NOT NULL,
                events {blob} NOT NULL)""",
            "CREATE UNIQUE INDEX event_pages_last ON event_pages (last_seq)",
        ),
    ),
    Migration(
        5,
        "finished interactions, notes and messages as one value each, so a customer's context "
        "reads one value per row (rows written before this version are read column by column)",
        # ``record`` is the row's MessagePack as an ``Interaction`` (once the
        # interaction is finished; NULL before), a ``Note`` or a ``Message``. A
        # later migration that renames or drops a field of one must set it to NULL.
        (
            "ALTER TABLE interactions ADD COLUMN record {blob}",
            "ALTER TABLE notes ADD COLUMN record {blob}",
            "ALTER TABLE messages ADD COLUMN record {blob}",
        ),
    ),
    Migration(
        6,
        "a customer's timeline as one value per interaction: a finished interaction's record "
        "holds its notes too; every record missing since version 5 is written; the indexes by "
        "status hold only the rows that can still change",
        # ``record`` of an interaction is now a ``TimelineEntry`` (the
        # interaction and its notes), rewritten whenever one of its notes is
        # added or moved. The notes of a customer but of no interaction get
        # an index of their own, and an interaction's notes one too.
        (
            "CREATE INDEX notes_interaction ON notes (interaction_id, at, id)",
            "CREATE INDEX notes_customer_only ON notes (customer_id, at, id) WHERE interaction_id IS NULL",
            # Finished interactions leave these two partial indexes and are never
            # written to them again: an UPDATE of a status costs less, and
            # the indexes stay the size of the live work, not of the history.
            # A query uses one only if its WHERE repeats the index's condition
            # word for word (``sql.py`` does).
            "DROP INDEX interactions_status",
            "CREATE INDEX interactions_live ON interactions (status) "
            "WHERE status IN ('waiting', 'offered', 'assigned')",
            "DROP INDEX interactions_agent_status",
            "CREATE INDEX interactions_wrapping ON interactions (agent) "
            "WHERE status = 'completed' AND wrap_up_ended_at IS NULL",
        ),
        reseal=("interactions", "notes", "messages"),
    ),
    Migration(
        7,
        "who may use the server: people (agents, supervisors, administrators) with argon2 "
        "password hashes, their sessions, and API tokens with scopes for other systems",
        # Secrets are never stored: a password as its argon2 hash, a session or
        # an API token as the SHA-256 of the random token handed out once.
        (
            """CREATE TABLE users (
                name TEXT PRIMARY KEY,
                role TEXT NOT NULL CHECK (role IN ('agent', 'supervisor', 'administrator')),
                agent TEXT,
                password_hash TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                disabled_at DOUBLE PRECISION)""",
            "CREATE UNIQUE INDEX users_agent ON users (agent) WHERE agent IS NOT NULL",
            """CREATE TABLE sessions (
                token_hash TEXT PRIMARY KEY,
                user_name TEXT NOT NULL REFERENCES users(name),
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                ended_at DOUBLE PRECISION)""",
            "CREATE INDEX sessions_user ON sessions (user_name)",
            """CREATE TABLE api_tokens (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                token_hash TEXT NOT NULL UNIQUE,
                scopes TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION,
                revoked_at DOUBLE PRECISION)""",
        ),
    ),
    Migration(
        8,
        "holds: an interaction on hold keeps since when, and the time of its ended holds "
        "(hold time is reported apart from talk time)",
        # A record sealed before this version decodes with no hold, which is
        # right: only live interactions are ever on hold.
        (
            "ALTER TABLE interactions ADD COLUMN held_at DOUBLE PRECISION",
            "ALTER TABLE interactions ADD COLUMN hold_seconds DOUBLE PRECISION NOT NULL DEFAULT 0",
        ),
    ),
    Migration(
        9,
        "channels: each outbound message's delivery as its channel last reported it, and how far "
        "through the event log the channels have sent",
        (
            # One row per outbound message a channel has taken: its status only
            # moves forward (queued, sent, delivered, read; or failed).
            """CREATE TABLE deliveries (
                message_id TEXT PRIMARY KEY REFERENCES messages(id),
                channel TEXT NOT NULL,
                status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'delivered', 'read', 'failed')),
                provider_id TEXT,
                detail TEXT,
                updated_at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX deliveries_provider ON deliveries (channel, provider_id)",
            """CREATE TABLE channel_cursors (
                name TEXT PRIMARY KEY,
                seq BIGINT NOT NULL)""",
        ),
    ),
    Migration(
        10,
        "a customer's context kept decoded between reads: each write of an interaction's record "
        "takes a number from a counter, so a reader can tell what changed since it last read",
        # A row has a number exactly when it has a record; records written
        # before this version get 0, and any later write a higher number
        # (store/kept.py says why that is enough). The timeline's index ends
        # with the number, so a reader counts a customer's records, finds the
        # newest and the ones written since without reading the rows.
        (
            "ALTER TABLE interactions ADD COLUMN sealed_seq BIGINT",
            "UPDATE interactions SET sealed_seq = 0 WHERE record IS NOT NULL",
            "DROP INDEX interactions_customer_created",
            "CREATE INDEX interactions_customer_timeline "
            "ON interactions (customer_id, created_at, id, sealed_seq)",
            """CREATE TABLE seal_counter (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                value BIGINT NOT NULL)""",
            "INSERT INTO seal_counter (id, value) VALUES (1, 0)",
        ),
    ),
)


def latest_version() -> int:
    return MIGRATIONS[-1].version
