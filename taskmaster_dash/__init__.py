"""TaskMaster Dash: a Dash app that monitors and runs a TaskMaster PostgreSQL database."""
