# Golden files for the quasi-likelihood F test of exprlmm.assoc.designs.negbin (edgeR 3.40
# glmQLFit / glmQLFTest, limma squeezeVar with the AveLogCPM trend), on the seeded simulated
# counts and the mouse design ~ weight + urea + group (group categorical), TMM offsets.
# The first 20 kept genes get zero counts in group 1 (after filtering and TMM), so that the
# residual df adjustment for exact zeros (.residDF) is exercised.
# Two runs: (1) edgeR as installed ("default"); (2) "tight": edgeR's Levenberg IRLS
# (mglmLevenberg, used by glmFit, glmLRT and adjustedProfileLik) run to tol = 1e-13 instead of
# 1e-6, and the common dispersion optimised to tol = 1e-10 on phi^(1/4), so that the exact
# maths can be compared. Run from this folder:  Rscript nb_make_ql_golden.R
suppressPackageStartupMessages(library(edgeR))
fmt <- function(x) formatC(x, digits = 17, format = "g")
mouse <- read.delim("mouse.tsv", check.names = FALSE)
counts <- as.matrix(read.delim(gzfile("sim_counts.tsv.gz"), row.names = 1, check.names = FALSE))
stopifnot(all(colnames(counts) == mouse$animal))
mouse$group <- factor(mouse$group)
x <- model.matrix(~ weight + urea + group, data = mouse)
dge <- DGEList(counts)
keep <- filterByExpr(dge, design = x)
dge <- calcNormFactors(dge[keep, , keep.lib.sizes = FALSE], method = "TMM")
dge$counts[1:20, mouse$group == "1"] <- 0

run <- function(dge, tol) {
  d <- estimateGLMCommonDisp(dge, x, tol = tol)
  fit <- glmQLFit(d, x)
  tests <- list(weight = "weight", urea = "urea", group = c("group2", "group3"))
  res <- lapply(tests, function(cf) glmQLFTest(fit, coef = cf))
  out <- data.frame(gene = rownames(d$counts), AveLogCPM = fmt(fit$AveLogCPM),
                    deviance = fmt(fit$deviance), df_residual = fit$df.residual.zeros,
                    s2 = fmt(fit$deviance / fit$df.residual.zeros),
                    var_prior = fmt(fit$var.prior), var_post = fmt(fit$var.post),
                    below_poisson = edgeR:::.isBelowPoissonBound(fit), check.names = FALSE)
  for (t in names(tests)) {
    out[[paste0("F_", t)]] <- fmt(res[[t]]$table$F)
    out[[paste0("p_", t)]] <- fmt(res[[t]]$table$PValue)
    out[[paste0("df_total_", t)]] <- fmt(res[[t]]$df.total)
  }
  # limma squeezeVar directly: the 3 lowest and 3 highest abundances get 0 df (left out of
  # the fit; their prior comes from the spline extrapolated linearly beyond the range)
  s2 <- fit$deviance / fit$df.residual.zeros
  df0 <- fit$df.residual.zeros
  o <- order(fit$AveLogCPM)
  df0[c(head(o, 3), tail(o, 3))] <- 0
  sv <- squeezeVar(s2, df0, covariate = fit$AveLogCPM)
  out$sv_df <- df0
  out$sv_var_prior <- fmt(sv$var.prior)
  out$sv_var_post <- fmt(sv$var.post)
  # common dispersion without the 20 genes with a group of zeros
  common_nz <- estimateGLMCommonDisp(dge$counts[-(1:20), ], x, offset = getOffset(dge), tol = tol)
  # ... and on edgeR's systematic subset of 500 genes ordered by AveLogCPM (systematicSubset)
  common_sub <- estimateGLMCommonDisp(dge$counts[-(1:20), ], x, offset = getOffset(dge),
                                      subset = 500, tol = tol)
  list(table = out, header = c(paste("common_dispersion", fmt(d$common.dispersion)),
                               paste("df_prior", fmt(fit$df.prior)),
                               paste("sv_df_prior", fmt(sv$df.prior)),
                               paste("common_dispersion_without_zero_genes", fmt(common_nz)),
                               paste("common_dispersion_without_zero_genes_subset500",
                                     fmt(common_sub))))
}
default <- run(dge, 1e-5)
lev <- edgeR::mglmLevenberg
formals(lev)$tol <- 1e-13
formals(lev)$maxit <- 2000
assignInNamespace("mglmLevenberg", lev, "edgeR")
# glmFit.default passes maxit = 250 explicitly; raise it too
gf <- edgeR:::glmFit.default
body(gf) <- parse(text = sub("maxit = 250", "maxit = 2000", paste(deparse(body(gf)), collapse = "\n")))[[1]]
assignInNamespace("glmFit.default", gf, "edgeR")
tight <- run(dge, 1e-10)
for (nm in c("default", "tight")) {
  r <- get(nm)
  con <- gzcon(file(paste0("nb_ql_", nm, ".tsv.gz"), "wb"))
  write.table(r$table, con, sep = "\t", quote = FALSE, row.names = FALSE); close(con)
  writeLines(r$header, paste0("nb_ql_", nm, "_prior.txt"))
}
writeLines(c(R.version.string, paste("edgeR", packageVersion("edgeR")),
             paste("limma", packageVersion("limma"))), "nb_ql_versions.txt")
