"""Data: sources (MAESTRO, audio folders, MIDI, built-in corpus), preparation and the training set."""
