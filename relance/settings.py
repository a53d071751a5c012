"""Where things are. Each setting has an environment variable (RELANCE_<NAME>) and a CLI
option; secrets are not settings: they are read where they are used, from the
environment or a Prefect Secret block, and never stored."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RELANCE_", extra="ignore")

    warehouse: Path = Path("relance.duckdb")
    campaigns: Path = Path("campaigns")
    outbox: Path = Path("outbox")
    # Temporary files: the generated demo export, previews.
    workdir: Path = Path(".relance")
    # DuckDB's memory ceiling: a campaign run leaves room for the rest of the machine.
    memory_limit: str = "2GB"
