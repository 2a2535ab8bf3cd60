"""Numbers and learning: filters, differential entropy, relaxation score, the music model."""
