# Golden files for exprlmm.assoc.designs: lmerTest (Satterthwaite, Kenward-Roger) and lm.
# Run from this folder:  Rscript make_lmertest_golden.R
# Inputs: mouse.tsv (the issue's data), mouse_sim.tsv, block_samples.tsv, block_expr.tsv
# (made by make_inputs.py). Outputs: golden_coef.tsv, golden_anova.tsv, golden_varcomp.tsv,
# golden_versions.txt. Numbers are written with 17 significant digits.
suppressPackageStartupMessages({library(lmerTest); library(pbkrtest)})
options(digits = 17)
fmt <- function(x) formatC(x, digits = 17, format = "g")

mouse <- read.delim("mouse.tsv", check.names = FALSE)
msim <- read.delim("mouse_sim.tsv", check.names = FALSE)
bs <- read.delim("block_samples.tsv", stringsAsFactors = TRUE)
be <- read.delim("block_expr.tsv", check.names = FALSE)
stopifnot(all(msim$animal == mouse$animal), all(be$sample == bs$sample))

coef_rows <- list(); anova_rows <- list(); vc_rows <- list()
add_lmer <- function(dataset, model, gene, formula, data) {
  fit <- lmer(formula, data = data, REML = TRUE)
  s <- summary(fit, ddf = "Satterthwaite")$coefficients
  k <- summary(fit, ddf = "Kenward-Roger")$coefficients
  coef_rows[[length(coef_rows) + 1]] <<- data.frame(
    dataset = dataset, model = model, gene = gene, term = rownames(s),
    estimate = fmt(s[, "Estimate"]), se = fmt(s[, "Std. Error"]), df = fmt(s[, "df"]),
    t = fmt(s[, "t value"]), p = fmt(s[, "Pr(>|t|)"]),
    se_kr = fmt(k[, "Std. Error"]), df_kr = fmt(k[, "df"]), p_kr = fmt(k[, "Pr(>|t|)"]))
  a <- anova(fit, type = 3, ddf = "Satterthwaite")
  ak <- anova(fit, type = 3, ddf = "Kenward-Roger")
  if (nrow(a) > 0) anova_rows[[length(anova_rows) + 1]] <<- data.frame(
    dataset = dataset, model = model, gene = gene, term = rownames(a),
    F = fmt(a[, "F value"]), ndf = fmt(a[, "NumDF"]), ddf = fmt(a[, "DenDF"]),
    p = fmt(a[, "Pr(>F)"]), F_kr = fmt(ak[, "F value"]), ddf_kr = fmt(ak[, "DenDF"]),
    p_kr = fmt(ak[, "Pr(>F)"]))
  vc <- as.data.frame(VarCorr(fit))
  vc_rows[[length(vc_rows) + 1]] <<- data.frame(
    dataset = dataset, model = model, gene = gene, component = vc$grp,
    variance = fmt(vc$vcov), singular = isSingular(fit), remlcrit = fmt(REMLcrit(fit)))
}
add_lm <- function(dataset, model, gene, formula, data) {
  fit <- lm(formula, data = data)
  s <- summary(fit)$coefficients
  coef_rows[[length(coef_rows) + 1]] <<- data.frame(
    dataset = dataset, model = model, gene = gene, term = rownames(s),
    estimate = fmt(s[, 1]), se = fmt(s[, 2]), df = fmt(rep(fit$df.residual, nrow(s))),
    t = fmt(s[, 3]), p = fmt(s[, 4]), se_kr = NA, df_kr = NA, p_kr = NA)
}

# the issue's gene
add_lmer("mouse", "weight+urea+(1|group)", "Gene.X", Gene.X ~ weight + urea + (1 | group), mouse)
add_lmer("mouse", "(1|urea.score)+(1|weight.score)", "Gene.X",
         Gene.X ~ (1 | urea.score) + (1 | weight.score), mouse)
add_lm("mouse", "lm:weight", "Gene.X", Gene.X ~ weight, mouse)
add_lm("mouse", "lm:urea", "Gene.X", Gene.X ~ urea, mouse)
add_lm("mouse", "lm:weight+urea", "Gene.X", Gene.X ~ weight + urea, mouse)
# simulated genes on the mouse design
for (g in setdiff(names(msim), "animal")) {
  d <- cbind(mouse, y = msim[[g]])
  add_lmer("mouse_sim", "weight+urea+(1|group)", g, y ~ weight + urea + (1 | group), d)
}
# a larger design: categorical treatment, crossed random intercepts
for (g in setdiff(names(be), "sample")) {
  d <- cbind(bs, y = be[[g]])
  add_lmer("block", "treatment+x+(1|block)", g, y ~ treatment + x + (1 | block), d)
  add_lmer("block", "treatment+x+(1|block)+(1|litter)", g,
           y ~ treatment + x + (1 | block) + (1 | litter), d)
}
write.table(do.call(rbind, coef_rows), "golden_coef.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
write.table(do.call(rbind, anova_rows), "golden_anova.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
write.table(do.call(rbind, vc_rows), "golden_varcomp.tsv", sep = "\t", quote = FALSE, row.names = FALSE)
writeLines(c(R.version.string,
             paste("lme4", packageVersion("lme4")),
             paste("lmerTest", packageVersion("lmerTest")),
             paste("pbkrtest", packageVersion("pbkrtest"))), "golden_versions.txt")
