"""Real servers that stand in for outside systems in tests: a faithful fake Immich."""
