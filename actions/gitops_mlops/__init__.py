"""Shared code of the reusable composite actions (stdlib only, so no install step is needed).

Each action's ``action.yml`` runs its script with this folder's parent on ``PYTHONPATH``.
"""
