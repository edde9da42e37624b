"""The analyst's workbench: widget-free compute functions behind the JupyterLab notebooks.

Modules: :mod:`.frames` (model-ready frames from a warehouse), :mod:`.explorer` (explorer state,
KPI views, forecasts and the ipywidgets builder), :mod:`.scenarios` (what-if forecasts from a
fitted model's effects), :mod:`.quota_planning` (quotas from the forecast distribution) and
:mod:`.comparison` (backtest every model on the user's data). Nothing here runs at import.
"""
