"""Helpers with no knowledge of networks: atomic file writes (:mod:`.atomic`) and text tables (:mod:`.tables`)."""
