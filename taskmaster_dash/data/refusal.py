"""The one base of every "we will not do that, and here is why" error raised for a user."""

from __future__ import annotations

from typing import Literal


class Refused(Exception):
    """A request refused before anything was written; the message is a sentence for the user.
    `kind` is how the page shows it: "error" (not done) or "warning" (done in part, or moot)."""

    kind: Literal["error", "warning"] = "error"
