"""Scenarios: the one description of a cluster, its links and its workload that the emulator and
the real-kernel lab both build from."""
