"""The edges: EEG sources in, music sinks out. Every vendor SDK is imported here only."""
