"""Errors apigetter raises, mapped to exit codes once, in cli.py.

ApigetterError                 exit 2 unless caught: the run cannot start
├── ConfigError                bad config file, home dir, unknown --api
├── ContractError              a contract failed to import or validate (.api, .path)
├── StoreError                 the SQLite store is corrupt, locked or unwritable (.path)
└── FetchError                 one endpoint failed; the run goes on (.api, .endpoint)
    ├── RetryLater             wait longer than we sleep in-run: reschedule (.until)
    │   └── QuotaDeferred      our own cross-run quota is spent: not a failure
    ├── NeedsAttention         401/403: credentials need a human
    └── OutputError            data could not be written (.path)
"""

from __future__ import annotations


class ApigetterError(Exception):
    """Base of every error apigetter raises on purpose."""


class ConfigError(ApigetterError):
    """The configuration or the command line is unusable."""


class ContractError(ApigetterError):
    """A contract could not be loaded or is invalid."""

    def __init__(self, api: str, reason: str, path: str = "") -> None:
        self.api, self.reason, self.path = api, reason, path
        where = f" ({path})" if path else ""
        super().__init__(f"contract {api}{where}: {reason}")


class StoreError(ApigetterError):
    """The store cannot be opened or written."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"store {path}: {reason}")


class FetchError(ApigetterError):
    """One endpoint could not be fetched; its queue entry stays due."""

    def __init__(self, reason: str, *, api: str = "", endpoint: str = "") -> None:
        self.reason, self.api, self.endpoint = reason, api, endpoint
        super().__init__(reason)


class RetryLater(FetchError):
    """The provider asked us to wait longer than a run should sleep."""

    def __init__(self, reason: str, until: float) -> None:
        super().__init__(reason)
        self.until = until


class QuotaDeferred(RetryLater):
    """The API's declared quota for the window is used up; the work waits, unsent."""


class NeedsAttention(FetchError):
    """The provider refused our credentials (401/403)."""


class OutputError(FetchError):
    """Fetched data could not be written to disk."""

    def __init__(self, reason: str, path: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
