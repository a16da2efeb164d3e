"""Worker side: the devices a process simulates, their transport, clock and pacing, and the
process's own life."""
