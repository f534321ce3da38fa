# Golden files for exprlmm.assoc.designs.counts / ebayes: edgeR TMM + filterByExpr, limma voom
# weights, limma lmFit + eBayes, and lmerTest on voom logCPM with voom weights.
# Run from this folder:  Rscript make_limma_golden.R   (inputs: mouse.tsv, sim_counts.tsv.gz)
suppressPackageStartupMessages({library(edgeR); library(limma); library(lmerTest)})
fmt <- function(x) formatC(x, digits = 17, format = "g")
mouse <- read.delim("mouse.tsv", check.names = FALSE)
counts <- as.matrix(read.delim(gzfile("sim_counts.tsv.gz"), row.names = 1, check.names = FALSE))
stopifnot(all(colnames(counts) == mouse$animal))
mouse$group <- factor(mouse$group)
x_fixed <- model.matrix(~ weight + urea, data = mouse)
x_limma <- model.matrix(~ weight + urea + group, data = mouse)

dge <- DGEList(counts)
keep <- filterByExpr(dge, design = x_fixed)
dge <- dge[keep, , keep.lib.sizes = FALSE]
dge <- calcNormFactors(dge, method = "TMM")
write.table(data.frame(sample = colnames(dge), lib_size = fmt(dge$samples$lib.size),
                       norm_factor = fmt(dge$samples$norm.factors)),
            "golden_tmm.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
writeLines(rownames(dge), "golden_filter_keep.txt")
uq <- calcNormFactors(DGEList(counts[keep, ]), method = "upperquartile")$samples$norm.factors
writeLines(fmt(uq), "golden_upperquartile.txt")

for (name in c("limma", "fixed")) {
  design <- if (name == "limma") x_limma else x_fixed
  v <- voom(dge, design)
  w <- v$weights; dimnames(w) <- dimnames(v$E)
  out <- data.frame(gene = rownames(w), apply(w, 2, fmt), check.names = FALSE)
  con <- gzcon(file(paste0("golden_voom_weights_", name, ".tsv.gz"), "wb"))
  write.table(out, con, sep = "\t", quote = FALSE, row.names = FALSE)
  close(con)
  if (name == "limma") {
    fit <- eBayes(lmFit(v, design))
    rows <- list()
    for (term in c("weight", "urea")) {
      i <- 1:300  # first 300 genes (the prior uses all)
      rows[[term]] <- data.frame(gene = rownames(fit)[i], term = term,
        beta = fmt(fit$coefficients[i, term]), t = fmt(fit$t[i, term]),
        p = fmt(fit$p.value[i, term]), df_total = fmt(fit$df.total[i]),
        s2_post = fmt(fit$s2.post[i]), sigma = fmt(fit$sigma[i]))
    }
    write.table(do.call(rbind, rows), "golden_ebayes.tsv", sep = "\t", quote = FALSE,
                row.names = FALSE)
    writeLines(c(paste("df_prior", fmt(fit$df.prior)), paste("s2_prior", fmt(fit$s2.prior))),
               "golden_ebayes_prior.txt")
  } else {
    # lmer on voom logCPM with voom weights (from the fixed part), first 25 kept genes
    rows <- list()
    for (gname in rownames(v$E)[1:25]) {
      d <- cbind(mouse, y = v$E[gname, ], w = v$weights[rownames(v$E) == gname, ])
      fit <- lmer(y ~ weight + urea + (1 | group), data = d, weights = w, REML = TRUE)
      s <- summary(fit)$coefficients
      rows[[gname]] <- data.frame(gene = gname, term = rownames(s),
        estimate = fmt(s[, 1]), se = fmt(s[, 2]), df = fmt(s[, 3]), p = fmt(s[, 5]),
        singular = isSingular(fit), remlcrit = fmt(REMLcrit(fit)))
    }
    write.table(do.call(rbind, rows), "golden_voom_lmer.tsv", sep = "\t", quote = FALSE,
                row.names = FALSE)
  }
}
writeLines(c(R.version.string, paste("edgeR", packageVersion("edgeR")),
             paste("limma", packageVersion("limma")), paste("lme4", packageVersion("lme4")),
             paste("lmerTest", packageVersion("lmerTest"))), "golden_limma_versions.txt")
