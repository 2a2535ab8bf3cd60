"""The asyncio service: CLI, configuration, wiring of one session, clock, telemetry."""
