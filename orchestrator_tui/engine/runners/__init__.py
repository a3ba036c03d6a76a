"""How a task executes: each runner starts a job and hands back a handle to control it."""
