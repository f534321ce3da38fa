# Slow dense LMM reference in base R (independent of any Python code).
#
# Run from the repository root:
#     Rscript tests/reference/lmm/dense_lmm.R
#
# Model, for each gene k (raw expression x_k, NOT standardised):
#     y = X b + x_k g + u + e,  u ~ N(0, s2g K),  e ~ N(0, s2e I),  delta = s2e / s2g,
#     V = s2g H,  H = K + delta I  (dense 80 x 80, Cholesky factor; no eigendecomposition).
# X = intercept (nocov) or intercept + purity + group_B (cov); q = ncol(X) + 1 with the gene.
#
# At a given delta (GLS, sigma^2 profiled):
#     b_hat = (W' H^-1 W)^-1 W' H^-1 y,  W = [X, x_k],  r = y - W b_hat,  rss_h = r' H^-1 r
#     ML:   l   = -1/2 [ N log(2 pi s2)  + log|H| + N ],               s2 = rss_h / N
#     REML: l_R = -1/2 [ (N-q) log(2 pi s2R) + log|H| + log|W'H^-1W| - log|W'W| + (N-q) ],
#                                                                      s2R = rss_h / (N-q)
#     se = sqrt(s2R [(W'H^-1W)^-1]_kk),  t = g_hat / se,  df = N - q,  p = 2 P(T_df > |t|)
# (se, t, p always use s2R = rss_h / (N - q), whatever way delta was chosen.)
#
# delta choices (one file each, with and without covariates):
#     nulldelta : delta = REML delta of the null model (no gene), shared by all genes
#     delta1    : delta = 1 fixed
#     reml      : per-gene REML refit of delta
#     ml        : per-gene ML refit of delta
# Optimisation: log(delta) on a grid of 241 points over [-12, 12], then optimize()
# (Brent) on the bracket around the best grid point, tol = 1e-10 on log(delta).
# at_bound: 0 interior optimum; -1 optimum at log(delta) = -12 (for ML the likelihood is
# unbounded as delta -> 0 here, see README); +1 optimum at the upper end: when the exact
# delta = Inf limit (OLS, h2 = 0) is at least as good it is reported (delta = Inf).

options(digits = 17)
args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script)) dirname(normalizePath(script)) else "tests/reference/lmm"

expr <- as.matrix(read.delim(file.path(here, "expression.tsv"), row.names = 1,
                             check.names = FALSE, colClasses = c("character", rep("numeric", 300))))
samp <- read.delim(file.path(here, "samples.tsv"), row.names = 1,
                   colClasses = c("character", "numeric", "numeric", "character", "numeric"))
Kf <- as.matrix(read.delim(file.path(here, "kinship.tsv"), row.names = 1, check.names = FALSE))
stopifnot(identical(rownames(expr), rownames(samp)), identical(rownames(expr), rownames(Kf)))

N <- nrow(expr)
G <- ncol(expr)
y <- samp$y

# K recomputed in R, compared with the file (the file's K is used for all fits).
mu <- colMeans(expr)
sd0 <- sqrt(colMeans(sweep(expr, 2, mu)^2))
Z <- sweep(sweep(expr, 2, mu), 2, sd0, "/")
K_R <- tcrossprod(Z) / G
k_diff <- max(abs(K_R - Kf))
K <- unname(Kf)

GRID <- seq(-12, 12, length.out = 241)
TOL <- 1e-10

fit_at <- function(delta, W, k = ncol(W)) {
  if (is.infinite(delta)) return(fit_limit(W, k))
  H <- K
  diag(H) <- diag(H) + delta
  C <- chol(H)                                  # H = C'C
  A <- backsolve(C, W, transpose = TRUE)        # C^-T W
  b <- backsolve(C, y, transpose = TRUE)        # C^-T y
  WHW <- crossprod(A)
  WHWi <- solve(WHW)
  beta <- drop(WHWi %*% crossprod(A, b))
  res <- b - drop(A %*% beta)                   # C^-T r
  rss <- sum(res^2)
  q <- ncol(W)
  logdetH <- 2 * sum(log(diag(C)))
  ldWHW <- determinant(WHW, logarithm = TRUE)$modulus[1]
  ldWW <- determinant(crossprod(W), logarithm = TRUE)$modulus[1]
  ll_ml <- -0.5 * (N * log(2 * pi * rss / N) + logdetH + N)
  ll_reml <- -0.5 * ((N - q) * log(2 * pi * rss / (N - q)) + logdetH + ldWHW - ldWW + (N - q))
  s2r <- rss / (N - q)
  se <- sqrt(s2r * WHWi[k, k])
  list(beta = beta[k], se = se, rss = rss, ll_ml = ll_ml, ll_reml = ll_reml, q = q)
}

# delta -> Inf (h2 -> 0): exact limit of every quantity above = ordinary least squares.
# l and l_R have finite limits (the log(delta) terms cancel); rss_h -> 0 (reported NA).
fit_limit <- function(W, k = ncol(W)) {
  q <- ncol(W)
  WW <- crossprod(W)
  WWi <- solve(WW)
  beta <- drop(WWi %*% crossprod(W, y))
  rss <- sum((y - drop(W %*% beta))^2)
  ll_ml <- -0.5 * (N * log(2 * pi * rss / N) + N)
  ll_reml <- -0.5 * ((N - q) * log(2 * pi * rss / (N - q)) + (N - q))
  se <- sqrt(rss / (N - q) * WWi[k, k])
  list(beta = beta[k], se = se, rss = NA_real_, ll_ml = ll_ml, ll_reml = ll_reml, q = q)
}

optimise_delta <- function(W, method) {
  f <- function(ld) {
    r <- fit_at(exp(ld), W)
    if (method == "reml") r$ll_reml else r$ll_ml
  }
  v <- vapply(GRID, f, numeric(1))
  i <- which.max(v)
  lo <- GRID[max(i - 1, 1)]
  hi <- GRID[min(i + 1, length(GRID))]
  o <- optimize(f, c(lo, hi), maximum = TRUE, tol = TOL)
  ld <- if (o$objective >= v[i]) o$maximum else GRID[i]
  best <- max(o$objective, v[i])
  at_bound <- 0L
  if (ld - GRID[1] < 1e-3) at_bound <- -1L
  if (GRID[length(GRID)] - ld < 1e-3) {
    at_bound <- 1L
    r_inf <- fit_limit(W)
    if ((if (method == "reml") r_inf$ll_reml else r_inf$ll_ml) >= best) ld <- Inf
  }
  list(log_delta = ld, at_bound = at_bound)
}

Xs <- list(nocov = matrix(1, N, 1),
           cov = cbind(1, samp$purity, samp$group_B))

fmt <- function(df) {
  for (nm in names(df)) {
    if (is.numeric(df[[nm]]) && !is.integer(df[[nm]])) df[[nm]] <- sprintf("%.17g", df[[nm]])
  }
  df
}
write_tsv <- function(df, name) {
  write.table(fmt(df), file.path(here, name), sep = "\t", quote = FALSE, row.names = FALSE)
}

null_rows <- list()
for (tag in names(Xs)) {
  X <- Xs[[tag]]
  nulls <- list()
  for (method in c("reml", "ml")) {
    o <- optimise_delta(X, method)
    d <- exp(o$log_delta)
    r <- fit_at(d, X)
    q0 <- ncol(X)
    s2 <- if (method == "reml") r$rss / (N - q0) else r$rss / N
    nulls[[method]] <- list(delta = d, fit = r)
    null_rows[[length(null_rows) + 1]] <- data.frame(
      covariates = if (tag == "cov") "purity+group_B" else "none", method = method,
      q_null = q0, delta = d, log_delta = o$log_delta, h2 = 1 / (1 + d),
      sigma2_g = s2, sigma2_e = d * s2, rss_h = r$rss,
      loglik_ml = r$ll_ml, loglik_reml = r$ll_reml, at_bound = o$at_bound)
  }

  modes <- list(nulldelta = "fixed", delta1 = "fixed", reml = "reml", ml = "ml")
  for (mode in names(modes)) {
    rows <- vector("list", G)
    for (j in seq_len(G)) {
      W <- cbind(X, expr[, j])
      at_bound <- NA_integer_
      if (mode == "nulldelta") {
        d <- nulls$reml$delta
      } else if (mode == "delta1") {
        d <- 1
      } else {
        o <- optimise_delta(W, mode)
        d <- exp(o$log_delta)
        at_bound <- o$at_bound
      }
      r <- fit_at(d, W)
      df <- N - r$q
      tt <- r$beta / r$se
      lp <- pt(-abs(tt), df, log.p = TRUE)
      # LRT (ML log-likelihoods): full vs null model without the gene
      if (mode == "reml") {
        lrt <- NA_real_
      } else {
        d0 <- if (mode == "ml") nulls$ml$delta else d
        lrt <- 2 * (r$ll_ml - fit_at(d0, X)$ll_ml)
      }
      rows[[j]] <- data.frame(
        gene = colnames(expr)[j], delta = d, h2 = 1 / (1 + d), beta = r$beta, se = r$se, t = tt, df = df,
        pvalue = 2 * exp(lp), neglog10p = -(log(2) + lp) / log(10), rss_h = r$rss,
        loglik_ml = r$ll_ml, loglik_reml = r$ll_reml, lrt_stat = lrt,
        lrt_pvalue = if (is.na(lrt)) NA_real_ else pchisq(lrt, 1, lower.tail = FALSE),
        at_bound = at_bound)
    }
    out <- do.call(rbind, rows)
    if (mode %in% c("nulldelta", "delta1")) out$at_bound <- out$h2 <- NULL
    if (mode == "reml") out$lrt_stat <- out$lrt_pvalue <- NULL
    write_tsv(out, sprintf("dense_r_%s_%s.tsv", mode, tag))
  }
}
write_tsv(do.call(rbind, null_rows), "dense_r_null.tsv")

info <- c(
  sprintf("%s", R.version.string),
  sprintf("max |K_R - K_file| = %.3e (K recomputed in R from expression.tsv)", k_diff),
  sprintf("BLAS: %s", if (!is.null(extSoftVersion()["BLAS"])) extSoftVersion()["BLAS"] else "?"),
  sprintf("LAPACK: %s", La_version())
)
writeLines(info, file.path(here, "dense_r_info.txt"))
cat(info, sep = "\n")
