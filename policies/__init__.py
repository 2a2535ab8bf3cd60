"""Relaxation score in, musical controls (tempo, valence, energy) out."""
