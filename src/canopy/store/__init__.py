"""Canopy's durable record: SQLAlchemy models, the unit of work, repositories, migrations."""

# The reservation tables live in their own module; importing it here registers them on
# the shared metadata wherever the store is used (migrations, tests, the app).
from canopy.store import reservations as reservations  # noqa: E402
