"""Standalone analysis programs behind the shipped agents.

Each module runs as ``python -m orchestrator_tui.agent_tools.NAME WORKSPACE [--json]``, uses
only the standard library (plus external programs such as ruff, git or tsc when they are on
PATH), prints a readable report ending with one ``SUMMARY:`` line, and exits 0 when the
analysis ran or 2 when the workspace cannot be read. None of them imports the rest of the
package, so they work on a fresh machine with nothing else installed.
"""
