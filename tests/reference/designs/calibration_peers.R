# R peers on the replicates written by `python calibration.py 5 --write-counts DIR`.
# Usage: Rscript calibration_peers.R DIR   -> calibration_peers.tsv (per replicate × method × term)
suppressPackageStartupMessages({library(edgeR); library(limma)})
dir <- commandArgs(TRUE)[1]
mouse <- read.delim("mouse.tsv", check.names = FALSE)
mouse$group <- factor(mouse$group)
eval_one <- function(p, truth) {
  padj <- p.adjust(p, "BH"); hits <- padj < 0.05
  c(null_p05 = mean(p[!truth] < 0.05), fdp = sum(hits & !truth) / max(sum(hits), 1),
    power = sum(hits & truth) / sum(truth), n_hits = sum(hits))
}
rows <- list()
files <- sort(list.files(dir, pattern = "^rep[0-9]+\\.tsv$", full.names = TRUE))
for (f in files) {
  rep <- as.integer(sub("rep([0-9]+)\\.tsv", "\\1", basename(f)))
  d <- read.delim(f, check.names = FALSE)
  truth <- list(weight = d$true_weight == "True", urea = d$true_urea == "True")
  counts <- as.matrix(d[, mouse$animal])
  dge <- calcNormFactors(DGEList(counts))
  x_fixed <- model.matrix(~ weight + urea + group, data = mouse)
  x_nogroup <- model.matrix(~ weight + urea, data = mouse)
  res <- list()
  # limma-voom, group fixed
  fit <- eBayes(lmFit(voom(dge, x_fixed), x_fixed))
  res[["limma_voom_fixed"]] <- fit$p.value
  # limma-voom + duplicateCorrelation (two rounds, as the limma guide)
  v <- voom(dge, x_nogroup)
  cor <- duplicateCorrelation(v, x_nogroup, block = mouse$group)$consensus.correlation
  v <- voom(dge, x_nogroup, block = mouse$group, correlation = cor)
  cor <- duplicateCorrelation(v, x_nogroup, block = mouse$group)$consensus.correlation
  fit <- eBayes(lmFit(v, x_nogroup, block = mouse$group, correlation = cor))
  res[["limma_voom_dupcor"]] <- fit$p.value
  # edgeR quasi-likelihood, with and without the group
  for (nm in c("fixed", "nogroup")) {
    x <- if (nm == "fixed") x_fixed else x_nogroup
    dd <- estimateDisp(dge, x)
    qf <- glmQLFit(dd, x)
    p <- sapply(c("weight", "urea"), function(t) glmQLFTest(qf, coef = t)$table$PValue)
    res[[paste0("edgeR_ql_", nm)]] <- p
  }
  for (m in names(res)) for (t in c("weight", "urea")) {
    rows[[length(rows) + 1]] <- data.frame(rep = rep, method = m, term = t,
      t(eval_one(res[[m]][, t], truth[[t]])))
  }
}
out <- do.call(rbind, rows)
write.table(out, "calibration_peers.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
print(aggregate(cbind(null_p05, fdp, power) ~ method + term, data = out, FUN = mean))
writeLines(c(R.version.string, paste("edgeR", packageVersion("edgeR")),
             paste("limma", packageVersion("limma"))), "calibration_versions.txt")
