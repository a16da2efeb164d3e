"""Fleet: profiles, identity generators, keys and the SQLite seed store."""
