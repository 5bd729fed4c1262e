"""Fetch plotly.js's basic bundle (scatter, bar, pie: every trace the app draws) into the app's
assets, for `make setup`. A page that loads it has window.Plotly before its first chart, so
dcc.Graph uses it instead of fetching the full bundle: a third of the size, and each chart is
drawn by a Plotly with fewer modules to go through (bench/browser.py; README "Speed").

Pinned like a lock file: the version is the one the installed plotly package bundles, and the
npm tarball must match its recorded sha512. Without the network, or for a plotly version not
pinned here, it says so and leaves the app on the full bundle (it works the same, slower).
Never committed: assets/plotly-basic.min.js is third-party code, ignored by git.

    .venv/bin/python scripts/fetch_plotly_basic.py
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

# plotly.js version -> the sha512 integrity of npm's plotly.js-basic-dist-min tarball
# (`npm view plotly.js-basic-dist-min@VERSION dist.integrity`).
PINNED = {
    "4.1.1": "sha512-1oNF8PeQx2hv/y7tqEVWKD3JGwn/MGEMQ8mL9HUwsaqG9FGy/OU5FHUHvzqbqxN4mnwZGI9ab"
    "TiE775C4kkjMQ==",
}
REGISTRY = os.environ.get("NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")
TARGET = Path(__file__).resolve().parents[1] / "taskmaster_dash" / "assets" / "plotly-basic.min.js"
MEMBER = "package/plotly-basic.min.js"


def bundled_version() -> str:
    from plotly.offline import get_plotlyjs_version

    return str(get_plotlyjs_version())


def integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def header_version(path: Path) -> str | None:
    """The version in the bundle's first lines ("plotly.js (basic) v4.1.1")."""
    try:
        head = path.read_bytes()[:300].decode("utf-8", "replace")
    except OSError:
        return None
    marker = head.find(" v")
    return head[marker + 2 :].split()[0] if marker >= 0 and "plotly.js" in head else None


def fetch(version: str, expected: str) -> bytes:
    url = f"{REGISTRY}/plotly.js-basic-dist-min/-/plotly.js-basic-dist-min-{version}.tgz"
    with urllib.request.urlopen(url, timeout=60) as response:
        tarball = response.read()
    if integrity(tarball) != expected:
        raise ValueError(f"{url} does not match its pinned sha512")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        member = archive.extractfile(MEMBER)
        if member is None:
            raise ValueError(f"{url} has no {MEMBER}")
        return member.read()


def main() -> int:
    version = bundled_version()
    if header_version(TARGET) == version:
        return 0
    TARGET.unlink(missing_ok=True)  # another version's bundle must not shadow this one's
    expected = PINNED.get(version)
    if expected is None:
        print(f"plotly.js {version}: no basic bundle pinned; charts use the full bundle")
        return 0
    try:
        bundle = fetch(version, expected)
    except (OSError, ValueError, tarfile.TarError) as exc:
        print(f"plotly.js basic bundle not fetched ({exc}); charts use the full bundle")
        return 0
    partial = TARGET.with_suffix(".part")
    partial.write_bytes(bundle)
    partial.replace(TARGET)
    print(f"plotly.js {version} basic bundle in {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
