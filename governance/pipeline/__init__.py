"""The governed pipeline's stages: one implementation each, called by Dagster assets and DVC.

See :mod:`governance.pipeline.stages` (the stages, by name) and
:mod:`governance.pipeline.workspace` (where a project keeps its inputs and outputs).
"""
