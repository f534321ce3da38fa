"""Plots. Every function takes ``ax=None`` (a new figure when omitted) and returns the Axes."""

from exprlmm.pl.designs import qq_plot, volcano_plot
from exprlmm.pl.gsea import enrichment_plot, nes_barplot

__all__ = ["enrichment_plot", "nes_barplot", "qq_plot", "volcano_plot"]
