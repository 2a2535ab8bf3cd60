"""What a lab takes away from a session: HTML reports, exports to FIF/EDF/BIDS, simulation plots."""
