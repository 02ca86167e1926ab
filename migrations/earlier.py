"""An earlier revision's module, for the SQL text it created: an upgrade that edits a function
starts from that text, and a downgrade restores it, without a second copy to drift apart."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

VERSIONS = Path(__file__).resolve().parent / "versions"


def revision_module(filename: str) -> ModuleType:
    """The module of `versions/<filename>` (revision files start with a digit: not importable by name)."""
    spec = importlib.util.spec_from_file_location(f"jieyou_revision_{filename[:4]}", VERSIONS / filename)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
