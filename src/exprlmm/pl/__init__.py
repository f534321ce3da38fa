"""Plots. Every function takes ``ax=None`` (a new figure when omitted) and returns the Axes."""

from exprlmm.pl.gsea import enrichment_plot, nes_barplot

__all__ = ["enrichment_plot", "nes_barplot"]
