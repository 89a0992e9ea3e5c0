"""Tests of the whole: end to end, deployment, documents, broker config, case, layout."""
