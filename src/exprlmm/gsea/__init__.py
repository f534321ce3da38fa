"""Pre-ranked gene-set enrichment analysis."""
