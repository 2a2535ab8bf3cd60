"""EEG in, relaxation out: causal filters, differential entropy, channel quality, the score, calibration."""
