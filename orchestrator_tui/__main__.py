"""`python -m orchestrator_tui` runs the same entry point as `orchestrator`."""

from orchestrator_tui.cli import main

raise SystemExit(main())
