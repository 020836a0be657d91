"""Orchestration: Heat-compatible stacks of resources built from templates.

- `template`: the pure template language (HOT and CloudFormation): parsing, parameters,
  conditions, functions and their dependencies. No I/O, no clock, no resource types.
"""
