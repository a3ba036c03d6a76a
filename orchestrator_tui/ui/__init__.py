"""The Textual application: screens for the menu, the dashboard, messages, the plan graph,
insights and settings, over the engine's snapshots and the database's read queries.

This is the only package that imports textual.
"""
