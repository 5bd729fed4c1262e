"""The browser-side callbacks live in assets/clientside.js, not in inline strings: each one the
app registers names a function that file defines (a typo would only show in a browser)."""

from __future__ import annotations

import re
from importlib.resources import files

# Still built in Python: Dash pages' own, and alerts/banner.py's (it carries a server sentence).
INLINE_ALLOWED = {"_pages_dummy.children", "database-status.children"}


def defined_functions() -> set[tuple[str, str]]:
    script = (files("taskmaster_dash") / "assets" / "clientside.js").read_text()
    defined: set[tuple[str, str]] = set()
    for namespace, body in re.findall(
        r"window\.dash_clientside\.(\w+) = \{(.*?)\n\};", script, re.S
    ):
        defined |= {(namespace, name) for name in re.findall(r"^  (\w+): ", body, re.M)}
    return defined


def test_every_clientside_callback_names_a_function_in_the_assets(client_as):
    dependencies = client_as("viewer").get("/_dash-dependencies").get_json()
    clientside = [c for c in dependencies if c.get("clientside_function")]
    inline = {
        c["output"] for c in clientside if c["clientside_function"]["namespace"].startswith("_")
    }
    named = {
        (c["clientside_function"]["namespace"], c["clientside_function"]["function_name"])
        for c in clientside
        if c["output"] not in inline
    }
    assert {("view", "writeUrl"), ("view", "scrollToHash"), ("guard", "clearMessage")} <= named
    assert named <= defined_functions()
    assert inline <= INLINE_ALLOWED
