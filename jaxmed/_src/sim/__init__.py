"""Simulators (data-generating processes) and their ground truths."""
