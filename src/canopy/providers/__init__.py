"""Cloud drivers behind one small contract (base.py), chosen through an explicit registry."""
