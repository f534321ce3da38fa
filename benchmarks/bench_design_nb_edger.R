# edgeR timings on the counts written by `python nb_bench.py 1 --write DIR`:
#   Rscript nb_bench_edger.R DIR/nb_bench_counts.tsv.gz
# Same design (~ weight + urea + group), TMM, all genes (filterByExpr keeps all of them).
suppressPackageStartupMessages(library(edgeR))
args <- commandArgs(trailingOnly = TRUE)
mouse <- read.delim("tests/reference/designs/mouse.tsv", check.names = FALSE)  # run from the repository root
mouse$group <- factor(mouse$group)
y <- as.matrix(read.delim(gzfile(args[1]), row.names = 1, check.names = FALSE))
x <- model.matrix(~ weight + urea + group, data = mouse)
tm <- function(expr) { t0 <- proc.time()[["elapsed"]]; force(expr); proc.time()[["elapsed"]] - t0 }
dge <- NULL
t_norm <- tm(dge <- calcNormFactors(DGEList(y[filterByExpr(DGEList(y), design = x), ])))
off <- getOffset(dge)
t_disp <- tm(d1 <- estimateDisp(dge, x))
t_tag0 <- tm(tag0 <- estimateGLMTagwiseDisp(dge$counts, x, offset = off, dispersion = 0.1,
                                            prior.df = 0))
t_cr <- tm(cr <- sapply(1:200, function(g) dispCoxReid(dge$counts[g, , drop = FALSE], x,
                                                      offset = off, interval = c(0, 20),
                                                      tol = 1e-10)))
t_glm <- tm({fit <- glmFit(dge$counts, x, offset = off, dispersion = tag0)
             lw <- glmLRT(fit, coef = "weight"); lu <- glmLRT(fit, coef = "urea")})
t_ql <- tm({dc <- estimateGLMCommonDisp(dge, x); qf <- glmQLFit(dc, x)
            qw <- glmQLFTest(qf, coef = "weight"); qu <- glmQLFTest(qf, coef = "urea")})
t_qlfit <- tm({qf <- glmQLFit(dc, x); qw <- glmQLFTest(qf, coef = "weight")
               qu <- glmQLFTest(qf, coef = "urea")})
cat(sprintf("genes %d\nfilter+TMM %.2f s\nestimateDisp (common+trend+tagwise) %.2f s\n",
            nrow(dge), t_norm, t_disp))
cat(sprintf("estimateGLMTagwiseDisp(prior.df=0) %.2f s\n", t_tag0))
cat(sprintf("dispCoxReid per gene: %.1f ms/gene -> %.0f s for all genes (extrapolated from 200)\n",
            1000 * t_cr / 200, t_cr / 200 * nrow(dge)))
cat(sprintf("glmFit + 2 glmLRT %.2f s\n", t_glm))
cat(sprintf("QL: estimateGLMCommonDisp + glmQLFit + 2 glmQLFTest %.2f s (of which glmQLFit + tests %.2f s)\n",
            t_ql, t_qlfit))
cat(R.version.string, "\nedgeR", as.character(packageVersion("edgeR")), "\n")
