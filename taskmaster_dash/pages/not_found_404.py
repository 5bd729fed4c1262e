import dash
from dash import dcc, html

dash.register_page(__name__, path="/404", name="Not found", nav=False)


def layout(**_query: str) -> html.Div:
    return html.Div(
        [html.H1("Page not found"), dcc.Link("Back to the overview", href="/")], className="panel"
    )
