"""The `canopy` command (Typer + Rich)."""
