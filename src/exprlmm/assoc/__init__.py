"""Association scans: simple linear regression and the linear mixed model."""
