"""The offload plan: the `[offload."PIPELINE.STAGE"]` tables of the project configuration.

    [offload."pipeline_3.core_logic"]
    host = "B"
    timeout_s = 600
    on_failure = "local"              # fail | retry | local
    retries = 2
    idempotent = false

Read and validated here, written back through `ProjectConfig` (which keeps the user's comments).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wiredprof.config import ProjectConfig, positive_number
from wiredprof.errors import ConfigError

__all__ = ["OffloadEntry", "ON_FAILURE_CHOICES", "DEFAULT_RETRIES", "read_offloads", "write_offload",
           "remove_offload"]

ON_FAILURE_CHOICES = ("fail", "retry", "local")
DEFAULT_RETRIES = {"fail": 0, "retry": 2, "local": 0}
_KIND = "offload"
_KEYS = ("host", "timeout_s", "on_failure", "retries", "idempotent")


@dataclass(frozen=True)
class OffloadEntry:
    """One `[offload."PIPELINE.STAGE"]` table."""

    stage: str
    host: str
    timeout_s: float | None = None
    on_failure: str = "fail"
    retries: int = 0
    idempotent: bool = False  # True: may run again after B started it (at most once otherwise)

    def to_table(self) -> dict[str, Any]:
        """The TOML table."""
        table: dict[str, Any] = {"host": self.host}
        if self.timeout_s is not None:
            table["timeout_s"] = self.timeout_s
        table["on_failure"] = self.on_failure
        table["retries"] = self.retries
        table["idempotent"] = self.idempotent
        return table


def read_offloads(config: ProjectConfig) -> dict[str, OffloadEntry]:
    """Every `[offload."PIPELINE.STAGE"]` of the project, validated."""
    tables = config.data().get(_KIND, {})
    if not isinstance(tables, dict):
        raise ConfigError(f'{config.path}: `offload` must be a table of [offload."PIPELINE.STAGE"] tables')
    return {stage: _entry(f'{config.path}: [offload."{stage}"]', stage, table) for stage, table in tables.items()}


def write_offload(config: ProjectConfig, entry: OffloadEntry) -> None:
    """Write (or replace) `[offload."PIPELINE.STAGE"]`."""
    config.set_table(_KIND, entry.stage, entry.to_table())


def remove_offload(config: ProjectConfig, stage: str) -> bool:
    """Drop `[offload."PIPELINE.STAGE"]`; False when it was not there."""
    return config.remove_table(_KIND, stage)


def _entry(where: str, stage: str, table: Any) -> OffloadEntry:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_KEYS)}")
    host = table.get("host")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"{where}: `host` is required")
    timeout = table.get("timeout_s")
    if timeout is not None and not positive_number(timeout):
        raise ConfigError(f"{where}: `timeout_s` must be a positive number")
    on_failure = table.get("on_failure", "fail")
    if on_failure not in ON_FAILURE_CHOICES:
        raise ConfigError(f"{where}: `on_failure` must be one of {', '.join(ON_FAILURE_CHOICES)}")
    retries = table.get("retries", DEFAULT_RETRIES[on_failure])
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"{where}: `retries` must be a whole number >= 0")
    if on_failure == "retry" and retries < 1:
        raise ConfigError(f'{where}: on_failure = "retry" needs `retries` >= 1 (or use "fail")')
    idempotent = table.get("idempotent", False)
    if not isinstance(idempotent, bool):
        raise ConfigError(f"{where}: `idempotent` must be true or false")
    return OffloadEntry(stage, host, float(timeout) if timeout is not None else None, on_failure, retries, idempotent)
