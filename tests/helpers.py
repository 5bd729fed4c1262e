"""Moved to tests/support; these names stay importable here for branches written before the
move. New code imports from tests.support.<module>."""

from tests.support.auth import (  # noqa: F401
    ROLE_PASSWORD,
    TestUsers,
    browser_sign_in,
    csrf_token,
    csrf_token_in,
    sign_in,
    signed_in_client,
)
from tests.support.browser import choose_option  # noqa: F401
from tests.support.callbacks import call_callback, callback_values, render_page  # noqa: F401
from tests.support.processes import ROOT, free_port, start_demo  # noqa: F401
