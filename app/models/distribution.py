"""How the schema splits by account, so it can be distributed on a distributed PostgreSQL (Citus:
`create_distributed_table(table, 'account_id')` for the account tables,
`create_reference_table(table)` for the global ones) without rewriting queries.

Every table is one or the other. An account table carries a non-null `account_id`, and each of
its unique constraints includes it (a distributed table can only enforce those), its primary key
too (`(account_id, id)` where there is a serial id, so `session.get` takes both), and a foreign key
to another account table goes from `(account_id, x_id)` to the parent's `(account_id, id)`; the
request path's statements on it filter by it. A global table says here why it is global, and no
global table refers to an account table (a reference table cannot).
`tests/unit/test_distribution.py` checks every table of the metadata against this, so a new table
must be placed here; `tests/integration/test_distribution_queries.py` checks the statements.

SQLite cannot auto-increment a composite key, so there the tables keep `id INTEGER PRIMARY KEY`
(the rowid, unique by itself) and single-column foreign keys; the models still map
`(account_id, id)`, and SQLAlchemy reads a new row's `id` from the rowid."""

from __future__ import annotations

# Small tables read before any account is known, or shared by all accounts: replicated to every
# node (reference tables), so joins with account tables stay on one node.
GLOBAL_TABLES: dict[str, str] = {
    "account": "the accounts themselves: the distribution key's table",
    "api_key": "found by its secret's hash before the account is known (the first step of every metering "
    "call), so the hash is unique across accounts; a reference table joins the metering statement on any node",
    "person": "signs in by email before the account is known, so the email is unique across accounts",
    "user": "a person's memberships are found by the person (sign-in, switching) across accounts",
    "role": "the built-in roles (account_id NULL) are shared by every account",
    "auth_session": "found by the session cookie's token hash before the account is known",
    "user_token": "found by an emailed link's token hash before the account is known",
    "auth_attempt": "sign-in throttling by email and address, across accounts",
    "stripe_event": "Stripe's event ids, stored once on arrival before the account is known",
    "job": "the job queue: a worker claims any account's due jobs in order (FOR UPDATE SKIP LOCKED)",
    "worker_heartbeat": "one row per job-running process",
    "outbox_email": "the email queue, drained by any worker; account_id is NULL for emails to no account",
    "operator_user": "the operator's staff, who belong to no account",
    "operator_session": "operator staff sessions, found by token hash",
    "operator_token": "operator staff single-use links, found by token hash",
    "operator_api_key": "operator API keys, found by their secret's hash",
}
