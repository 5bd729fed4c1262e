"""The JSON API under /api/v1/ (routes are wired in app.py)."""
