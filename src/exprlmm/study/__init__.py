"""The paper's study in one command: purity confounding, K without purity genes, GSEA,
subsampling, cross-cohort figures and an HTML report (``exprlmm study``; see docs/study.md).

Modules: `config` (TOML → `StudyConfig`), `purity` (pure maths of the purity analysis),
`runner` (resumable, content-hashed steps), `report` (figures and the HTML report).
"""

from exprlmm.study.config import StudyConfig, load_study_config, study_config_from_dict
from exprlmm.study.runner import StudyResult, run_study

__all__ = [
    "StudyConfig",
    "StudyResult",
    "load_study_config",
    "run_study",
    "study_config_from_dict",
]
