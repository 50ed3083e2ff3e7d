"""Streaming checks: the session exclusion engine and its ledger (`sessions`), series rules."""
