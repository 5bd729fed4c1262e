"""Error triage, by concern: `filters` (the list's filter and checks on client values),
`listing` (the triage page's list SQL), `detail` (one error), `actions` (the state machine that
resolves, ignores, reopens). The public names are also importable from here."""

from taskmaster_dash.data.errors.actions import (
    ACTIONS,
    MAX_BULK,
    MAX_NOTE,
    Action,
    Seen,
    TriageRefused,
    change_errors,
    check_note,
    parse_seen,
)
from taskmaster_dash.data.errors.detail import ErrorDetail, error_detail
from taskmaster_dash.data.errors.filters import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    ErrorFilter,
    parse_timestamp,
    parse_uuid,
)
from taskmaster_dash.data.errors.listing import (
    COUNT_CAP,
    MAX_PAGE,
    SEARCH_ID_LIMIT,
    SORTABLE,
    count_errors,
    error_page,
    service_names,
)

__all__ = [
    "ACTIONS",
    "CLOSED_STATUSES",
    "COUNT_CAP",
    "MAX_BULK",
    "MAX_NOTE",
    "MAX_PAGE",
    "OPEN_STATUSES",
    "SEARCH_ID_LIMIT",
    "SORTABLE",
    "Action",
    "ErrorDetail",
    "ErrorFilter",
    "Seen",
    "TriageRefused",
    "change_errors",
    "check_note",
    "count_errors",
    "error_detail",
    "error_page",
    "parse_seen",
    "parse_timestamp",
    "parse_uuid",
    "service_names",
]
