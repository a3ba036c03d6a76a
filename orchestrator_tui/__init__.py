"""orchestrator_tui: plan, run and watch a team of coding agents in parallel."""

__version__ = "0.1.0"
