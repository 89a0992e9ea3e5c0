"""Tests of common/: config, wire contract, Immich client, operations helpers, broker users."""
