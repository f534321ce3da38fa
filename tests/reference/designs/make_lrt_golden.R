# Likelihood-ratio tests (ML fits, as anova(full, reduced) in lme4) on the simulated mouse genes.
# Run from this folder: Rscript make_lrt_golden.R  -> golden_lrt.tsv
suppressPackageStartupMessages(library(lme4))
fmt <- function(x) formatC(x, digits = 17, format = "g")
mouse <- read.delim("mouse.tsv", check.names = FALSE)
msim <- read.delim("mouse_sim.tsv", check.names = FALSE)
rows <- list()
for (g in setdiff(names(msim), "animal")) {
  d <- cbind(mouse, y = msim[[g]])
  full <- lmer(y ~ weight + urea + (1 | group), data = d, REML = FALSE)
  for (term in c("weight", "urea")) {
    red <- update(full, as.formula(paste(". ~ . -", term)))
    a <- anova(red, full)
    rows[[length(rows) + 1]] <- data.frame(gene = g, term = term,
      chisq = fmt(a$Chisq[2]), df = a$Df[2], p = fmt(a$`Pr(>Chisq)`[2]),
      loglik_full = fmt(as.numeric(logLik(full))), loglik_reduced = fmt(as.numeric(logLik(red))))
  }
}
write.table(do.call(rbind, rows), "golden_lrt.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
