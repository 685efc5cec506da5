"""Energy accounting for simulated runs (per-layer dynamic energy, static energy, provenance)."""
