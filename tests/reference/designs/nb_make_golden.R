# Golden files for exprlmm.assoc.designs.negbin: edgeR NB GLM (glmFit/glmLRT), Cox-Reid APL
# and per-gene Cox-Reid dispersions, on the seeded simulated counts and the mouse design
# ~ weight + urea + group (group categorical). Run from this folder:  Rscript nb_make_golden.R
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
y <- dge$counts
offset <- getOffset(dge)
writeLines(fmt(offset), "nb_offset.txt")

# 1. GLM + LRT at a fixed common dispersion 0.1, all kept genes
fit <- glmFit(y, x, offset = offset, dispersion = 0.1)
lrt_w <- glmLRT(fit, coef = "weight"); lrt_u <- glmLRT(fit, coef = "urea")
lrt_g <- glmLRT(fit, coef = c("group2", "group3"))
out <- data.frame(gene = rownames(y), lr_weight = fmt(lrt_w$table$LR), p_weight = fmt(lrt_w$table$PValue),
                  lr_urea = fmt(lrt_u$table$LR), p_urea = fmt(lrt_u$table$PValue),
                  lr_group = fmt(lrt_g$table$LR), p_group = fmt(lrt_g$table$PValue),
                  check.names = FALSE)
# the same fits with edgeR's Levenberg IRLS run to tol = 1e-13 (glmFit/glmLRT stop at 1e-6,
# which leaves coefficients ~1e-2 off along the flat intercept-weight direction)
tight <- function(cols) mglmLevenberg(y, x[, cols, drop = FALSE], dispersion = 0.1,
                                      offset = offset, tol = 1e-13, maxit = 2000)
full <- tight(1:5)
out <- cbind(out, setNames(data.frame(apply(full$coefficients, 2, fmt)),
                           paste0("tight_", colnames(x))),
             tight_deviance = fmt(full$deviance),
             tight_lr_weight = fmt(tight(c(1, 3, 4, 5))$deviance - full$deviance),
             tight_lr_urea = fmt(tight(c(1, 2, 4, 5))$deviance - full$deviance),
             tight_lr_group = fmt(tight(1:3)$deviance - full$deviance))
con <- gzcon(file("nb_glm_common.tsv.gz", "wb"))
write.table(out, con, sep = "\t", quote = FALSE, row.names = FALSE); close(con)

# 2. first 300 kept genes: Cox-Reid APL at fixed dispersions, and each gene's own maximiser
i <- 1:300
apl <- sapply(c(0.01, 0.1, 1), function(d) adjustedProfileLik(d, y[i, ], x, offset = offset))
t0 <- proc.time()[["elapsed"]]
disp <- sapply(i, function(g) dispCoxReid(y[g, , drop = FALSE], x, offset = offset,
                                        interval = c(0, 20), tol = 1e-10))
t_disp <- proc.time()[["elapsed"]] - t0
fit2 <- glmFit(y[i, ], x, offset = offset, dispersion = disp)
lw <- glmLRT(fit2, coef = "weight"); lu <- glmLRT(fit2, coef = "urea")
tag0 <- estimateGLMTagwiseDisp(y, x, offset = offset, dispersion = 0.1, prior.df = 0)
# shrinkage to the common APL (weighted likelihood, no trend), all 2,000 genes, prior.df 10
common <- estimateGLMCommonDisp(y, x, offset = offset)
tag10 <- estimateGLMTagwiseDisp(y, x, offset = offset, dispersion = common, prior.df = 10,
                                trend = FALSE)
writeLines(c(paste("common", fmt(common)), fmt(tag10)), "nb_dispersion_prior10.txt")
disp_default <- estimateDisp(dge, x)$tagwise.dispersion
out <- data.frame(gene = rownames(y)[i], apl_0.01 = fmt(apl[, 1]), apl_0.1 = fmt(apl[, 2]),
                  apl_1 = fmt(apl[, 3]), disp_coxreid = fmt(disp),
                  disp_tagwise_prior0 = fmt(tag0[i]), disp_estimateDisp = fmt(disp_default[i]),
                  lr_weight = fmt(lw$table$LR), p_weight = fmt(lw$table$PValue),
                  lr_urea = fmt(lu$table$LR), p_urea = fmt(lu$table$PValue),
                  logFC_weight = fmt(lw$table$logFC), logFC_urea = fmt(lu$table$logFC),
                  check.names = FALSE)
write.table(out, "nb_dispersion.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
writeLines(c(R.version.string, paste("edgeR", packageVersion("edgeR")),
             paste("dispCoxReid loop over 300 genes (s):", t_disp)), "nb_versions.txt")
