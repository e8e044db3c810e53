"""Errors that are the job's input's fault, not the code's: their message becomes the FailureReason."""

from __future__ import annotations


class ArgumentError(ValueError):
    """A hyperparameter is unknown or its value is unusable."""


class DataError(ValueError):
    """A channel's data cannot be used for training."""
