"""Benchmarks. `make bench` runs `python -m bench`, which runs every bench module and
rewrites its section of BENCHMARKS.md with the machine and the date."""
