"""The monthly review: fit once, write artifacts, run every report notebook, publish HTML.

Modules (import the one you need; importing this package loads nothing heavy):

``settings``   the run's settings (model, commission plan, labels) and their TOML file
``outlook``    the review calendar, data as of the review date, the single model fit and
               what its draws say (P(quota), fan, last month's check)
``artifacts``  :func:`~spm_models.review.artifacts.build_artifacts`: every table reports read
``last_month`` last month's forecast (its run's snapshot, or a refit) against what happened
``views``      what a report kernel reads: one subject's slice of the artifacts
``monthly``    the same for the company's monthly review
``headline``   headline cards' numbers and their change since last month
``render``     escaped HTML fragments for report cells
``page``       the headline cards, the deals tables and navigation of agent and territory pages
``company``    the monthly review's own fragments (territories, leaderboard, model choice)
``params``     typed parameters per report template, checked before a kernel starts
``naming``     safe output file names
``kernels``    pre-imported kernels forked per report (``server``, ``provisioner``), or
               plain ones where the platform cannot fork (``mode``)
``runner``     parallel papermill execution with failure isolation and timeouts
``export``     code-free, self-contained HTML
``site``       index.html and manifest.json
``pipeline``   :func:`~spm_models.review.pipeline.run_review`, the whole month
"""

from __future__ import annotations

__all__ = ["run_review"]


def run_review(**kwargs):
    """Run a month's review; see :func:`spm_models.review.pipeline.run_review`."""
    from spm_models.review.pipeline import run_review as _run

    return _run(**kwargs)
