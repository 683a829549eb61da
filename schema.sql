-- apigetter store. Applied on first open; PRAGMA user_version records the version so
-- later releases can migrate (see store.MIGRATIONS).

-- One row per invocation. A row with status 'running' and a fresh heartbeat is the
-- mutual-exclusion marker; its claims say which APIs it holds.
CREATE TABLE IF NOT EXISTS runs (
    id           INTEGER PRIMARY KEY,
    status       TEXT NOT NULL,  -- running | done | failed | skipped | abandoned | interrupted
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    apis         TEXT NOT NULL,  -- JSON list of claimed APIs
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL,
    finished_at  REAL,
    summary      TEXT            -- JSON totals, no secrets
);

CREATE TABLE IF NOT EXISTS claims (
    api    TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id)
);

-- Work queue: one 'standard' entry per endpoint (missing = due now) and at most one
-- 'historic' entry while a history walk is under way.
CREATE TABLE IF NOT EXISTS queue (
    api       TEXT NOT NULL,
    endpoint  TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('standard', 'historic')),
    run_after REAL NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 0,
    cursor    TEXT,              -- JSON history cursor
    PRIMARY KEY (api, endpoint, kind)
);

-- What we know about each endpoint between runs.
CREATE TABLE IF NOT EXISTS endpoints (
    api            TEXT NOT NULL,
    endpoint       TEXT NOT NULL,
    last_success   REAL,
    last_attempt   REAL,
    last_result    TEXT,         -- ok | error | attention | deferred
    last_error     TEXT,
    history_chunks INTEGER NOT NULL DEFAULT 0,
    history_done   REAL,         -- when the history walk ended; it never restarts by itself
    PRIMARY KEY (api, endpoint)
);

-- Latest file per output key, for dedupe by content hash without directory scans.
-- 'staged' is set while the file still sits in the staging dir (roll-forward on recovery).
CREATE TABLE IF NOT EXISTS files (
    api      TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    key      TEXT NOT NULL,      -- day, entity id, or '' for snapshots
    hash     TEXT NOT NULL,
    path     TEXT NOT NULL,      -- relative to the data dir
    staged   TEXT,               -- staging file name while not yet in place
    run_id   INTEGER NOT NULL,
    PRIMARY KEY (api, endpoint, key)
);

-- Requests sent, kept for the longest declared window so quotas hold across runs.
CREATE TABLE IF NOT EXISTS ledger (
    api TEXT NOT NULL,
    at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_api_at ON ledger (api, at);

-- Run log: notable events (entries removed, claims taken over, failures).
CREATE TABLE IF NOT EXISTS events (
    id       INTEGER PRIMARY KEY,
    run_id   INTEGER,
    at       REAL NOT NULL,
    api      TEXT,
    endpoint TEXT,
    level    TEXT NOT NULL,
    message  TEXT NOT NULL
);

-- OAuth2 tokens (schema 2): the latest refresh token (rotated ones replace it before the
-- new access token is used) and the current access token with its expiry. This file is
-- the only place tokens are written to; it is created 0600.
CREATE TABLE IF NOT EXISTS tokens (
    api           TEXT PRIMARY KEY,
    refresh_token TEXT,
    access_token  TEXT,
    expires_at    REAL,          -- when the access token expires (run clock), NULL unknown
    updated_at    REAL NOT NULL
);

CREATE INDEX IF NOT EXISTS files_staged ON files (staged) WHERE staged IS NOT NULL;
