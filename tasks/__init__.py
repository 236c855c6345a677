"""Frozen-feature evaluation tasks (importable as ``benchbarcode.tasks``)."""
