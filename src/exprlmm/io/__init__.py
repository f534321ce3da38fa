"""Readers and writers. Nothing outside this package opens files."""
