# edgeR quasi-likelihood peers of nb_calibration.py on the replicates written by
# `python calibration.py 5 --write-counts DIR` (same simulation and low-count filter).
# edgeR QL at the common dispersion (estimateGLMCommonDisp, as our --nb-test ql) and at the
# trended dispersion (estimateDisp, edgeR's usual pipeline), group fixed or ignored.
# Usage: Rscript nb_calibration_peers.R DIR   -> nb_calibration_peers.tsv
suppressPackageStartupMessages(library(edgeR))
dir <- commandArgs(TRUE)[1]
mouse <- read.delim("mouse.tsv", check.names = FALSE)
mouse$group <- factor(mouse$group)
eval_one <- function(p, truth) {
  padj <- p.adjust(p, "BH"); hits <- padj < 0.05
  c(null_p05 = mean(p[!truth] < 0.05), fdp = sum(hits & !truth) / max(sum(hits), 1),
    power = sum(hits & truth) / sum(truth), n_hits = sum(hits))
}
rows <- list()
for (f in sort(list.files(dir, pattern = "^rep[0-9]+\\.tsv$", full.names = TRUE))) {
  rep <- as.integer(sub("rep([0-9]+)\\.tsv", "\\1", basename(f)))
  d <- read.delim(f, check.names = FALSE)
  truth <- list(weight = d$true_weight == "True", urea = d$true_urea == "True")
  dge <- calcNormFactors(DGEList(as.matrix(d[, mouse$animal])))
  designs <- list(fixed = model.matrix(~ weight + urea + group, data = mouse),
                  nogroup = model.matrix(~ weight + urea, data = mouse))
  for (nm in names(designs)) {
    x <- designs[[nm]]
    fits <- list(common = glmQLFit(estimateGLMCommonDisp(dge, x), x),
                 trended = glmQLFit(estimateDisp(dge, x), x))
    for (disp in names(fits)) for (t in c("weight", "urea")) {
      p <- glmQLFTest(fits[[disp]], coef = t)$table$PValue
      rows[[length(rows) + 1]] <- data.frame(rep = rep, method = paste0("edgeR_ql_", disp, "_", nm),
                                             term = t, t(eval_one(p, truth[[t]])))
    }
  }
}
out <- do.call(rbind, rows)
write.table(out, "nb_calibration_peers.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
print(aggregate(cbind(null_p05, fdp, power) ~ method + term, data = out, FUN = mean))
writeLines(c(R.version.string, paste("edgeR", packageVersion("edgeR")),
             paste("limma", packageVersion("limma"))), "nb_calibration_versions.txt")
