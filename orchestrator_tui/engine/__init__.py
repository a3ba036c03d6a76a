"""The asyncio engine: sessions, the dispatch loop, runners, control and the agent registry."""
