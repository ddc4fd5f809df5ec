"""Click commands of the memsim CLI, one module per command (group)."""
