#!/bin/sh
# The mouse example (examples/mouse_design/README.md). Run from this folder.
set -e
# 1. advice on the model the lab tried, and on the recommended one (sample sheet only)
exprlmm design --samples mice.tsv --formula "~ (1|urea.score) + (1|weight.score)" --check-only
exprlmm design --samples mice.tsv --formula "~ weight + urea + (1|group)" --check-only
# 2. the lab's gene, gene by gene exactly as lmer + lmerTest (Satterthwaite)
exprlmm design --expression logexpr.tsv --samples mice.tsv \
    --formula "~ weight + urea + (1|group)" --variance gene --no-ebayes -o genex_lmm.tsv
# 3. all genes from counts (here a seeded simulation of this design, 2,000 genes):
#    TMM, voom weights, group correlation pooled across genes, empirical Bayes (defaults)
exprlmm design --counts counts.tsv.gz --samples mice.tsv \
    --formula "~ weight + urea + (1|group)" --plots -o all_genes.tsv
