"""Pure Python: states, plans, DAG maths and the scheduling policy. No I/O, no asyncio."""
