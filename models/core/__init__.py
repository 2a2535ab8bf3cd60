"""What every stage shares: the messages between stages, the error hierarchy, the clocks."""
