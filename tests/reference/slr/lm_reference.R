# Simple linear regression (OLS) reference with base R lm(), all 300 genes.
#
# Run from the repository root:
#     Rscript tests/reference/slr/lm_reference.R
#
# Inputs (shared with the LMM references): tests/reference/lmm/expression.tsv, samples.tsv.
# For each gene k (raw expression x_k, not standardised):
#     nocov: lm(y ~ x_k)                      (intercept + gene, df = N - 2 = 78)
#     cov:   lm(y ~ purity + group_B + x_k)   (group_B = 0/1 dummy of group, df = N - 4 = 76)
# Reported for the gene coefficient: coef, se, t, df (= df.residual), pvalue (two-sided t),
# neglog10p = -log10(pvalue) computed from pt(log.p = TRUE), sigma (residual SE).

options(digits = 17)
args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script)) dirname(normalizePath(script)) else "tests/reference/slr"
lmm_dir <- file.path(dirname(here), "lmm")

expr <- as.matrix(read.delim(file.path(lmm_dir, "expression.tsv"), row.names = 1,
                             check.names = FALSE, colClasses = c("character", rep("numeric", 300))))
samp <- read.delim(file.path(lmm_dir, "samples.tsv"), row.names = 1,
                   colClasses = c("character", "numeric", "numeric", "character", "numeric"))
stopifnot(identical(rownames(expr), rownames(samp)))
d <- samp

fmt <- function(df) {
  for (nm in names(df)) {
    if (is.numeric(df[[nm]]) && !is.integer(df[[nm]])) df[[nm]] <- sprintf("%.17g", df[[nm]])
  }
  df
}

for (tag in c("nocov", "cov")) {
  rows <- vector("list", ncol(expr))
  for (j in seq_len(ncol(expr))) {
    d$x <- expr[, j]
    fit <- if (tag == "nocov") lm(y ~ x, data = d) else lm(y ~ purity + group_B + x, data = d)
    cf <- summary(fit)$coefficients["x", ]
    df <- fit$df.residual
    lp <- pt(-abs(cf[["t value"]]), df, log.p = TRUE)
    rows[[j]] <- data.frame(
      gene = colnames(expr)[j], coef = cf[["Estimate"]], se = cf[["Std. Error"]],
      t = cf[["t value"]], df = as.integer(df), pvalue = cf[["Pr(>|t|)"]],
      neglog10p = -(log(2) + lp) / log(10), sigma = summary(fit)$sigma)
  }
  out <- fmt(do.call(rbind, rows))
  write.table(out, file.path(here, sprintf("lm_%s.tsv", tag)), sep = "\t", quote = FALSE,
              row.names = FALSE)
}
writeLines(R.version.string, file.path(here, "lm_r_info.txt"))
