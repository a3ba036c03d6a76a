"""Widgets of the dashboard, the graph and the message log."""
