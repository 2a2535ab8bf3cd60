"""Services a session runs beside its signal path: player and scheduler, recorder, telemetry, JSON, terminal view."""
