"""Tests of the renderer service (renderer/)."""
