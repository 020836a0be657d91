"""Canopy: one OpenStack-compatible control plane over many clouds."""

__version__ = "0.1.0"
