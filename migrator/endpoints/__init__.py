"""Endpoints: where mail lives (a URL or a path), which kind of store reads it, and how to log in."""
