# lmer + lmerTest (Satterthwaite) gene by gene on the first 200 genes of bench_design.py's data
# (python bench_design.py --write), to extrapolate to 20,000 genes.
suppressPackageStartupMessages(library(lmerTest))
mouse <- read.delim("tests/reference/designs/mouse.tsv", check.names = FALSE)  # run from the repository root
expr <- as.matrix(read.delim(gzfile("/tmp/bench_expr.tsv.gz"), row.names = 1, check.names = FALSE))
t0 <- proc.time()[["elapsed"]]
for (i in seq_len(nrow(expr))) {
  d <- cbind(mouse, y = expr[i, mouse$animal])
  fit <- suppressMessages(lmer(y ~ weight + urea + (1 | group), data = d))
  s <- summary(fit)$coefficients
}
el <- proc.time()[["elapsed"]] - t0
cat(sprintf("lmer+lmerTest: %.1f ms per gene; %.0f s extrapolated to 20000 genes\n",
            1000 * el / nrow(expr), el / nrow(expr) * 20000))
