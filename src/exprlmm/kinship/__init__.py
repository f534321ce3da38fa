"""Kinship (sample-similarity) matrices from expression and their eigensystems."""
