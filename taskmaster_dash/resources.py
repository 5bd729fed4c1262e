"""Files shipped inside the package (sql/, assets/, alerts/rules.yaml, data/promql.yaml), found
through importlib.resources so they are where the installed package is, wheel or checkout."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped(*parts: str) -> Path:
    """The shipped file or folder at `parts` below the package. A real path, since Dash's assets
    and pages folders and the migration runner's globs need one; the package is always installed
    as files (a wheel is unpacked, an editable install points at the checkout), never zipped."""
    found = files("taskmaster_dash").joinpath(*parts)
    if not isinstance(found, Path):
        raise RuntimeError(
            f"taskmaster_dash must be installed as files, not from an archive: {found}"
        )
    return found
