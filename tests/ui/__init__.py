"""Tests of the Textual application: Pilot-driven functions, snapshots, tmux and serve."""
