"""Master side: leases, the store writer, the fleet view, acceptance and rollouts."""
