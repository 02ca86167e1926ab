"""Build an Alembic Config without relying on the current directory (works when installed)."""
from __future__ import annotations

from pathlib import Path

from alembic.config import Config


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config
