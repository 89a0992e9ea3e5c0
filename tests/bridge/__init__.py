"""Tests of the bridge daemon (bridge/)."""
