"""Pure domain types shared by every layer: states, specs, placements and errors."""
