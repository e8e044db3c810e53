"""Reusable constructs the platform stacks are built from, one per file."""
