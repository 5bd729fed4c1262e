import dash
from dash import html

from taskmaster_dash.pages._ui import link

dash.register_page(__name__, path="/404", name="Not found", nav=False)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [html.H1("Page not found"), link("Back to the overview", "/")], className="panel"
    )
