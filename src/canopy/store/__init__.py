"""Canopy's durable record: SQLAlchemy models, the unit of work, repositories, migrations."""
