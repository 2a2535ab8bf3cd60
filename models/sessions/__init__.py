"""The on-disk session format: the folder a run writes, its reader and its summary."""
