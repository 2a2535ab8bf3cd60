"""One running session: the wiring, its clock, hub and control, acquisition, shutdown, the simulated loop."""
