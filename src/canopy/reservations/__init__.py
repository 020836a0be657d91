"""Reservations: Blazar-compatible leases of capacity over time, placed across clouds.

- `requests`: the lease and reservation bodies python-blazarclient sends, validated;
- `capacity`: where a reservation's servers fit over its whole window (the scheduler's
  pipeline over snapshots whose usage is the peak of the window), and its claims;
- `service`: create, update, delete and read leases, one transaction each (the work is
  in `lease_reads`, `lease_create`, `lease_update` and `lease_events`);
- `controller`: starts and ends leases when their events fall due (leased rows);
- `flavors`: the private flavor an instance reservation is used through.
"""
