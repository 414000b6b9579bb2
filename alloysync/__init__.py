"""Alloy's side: the HTTP client, item mapping, and the sync that turns items into jobs."""
