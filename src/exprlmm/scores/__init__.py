"""Aneuploidy scores computed from segmented copy number."""
