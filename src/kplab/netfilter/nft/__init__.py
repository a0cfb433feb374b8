"""The nftables engine: read (`text`, `jsonin`), compile (`compile`), walk (`evaluate`, `walk`),
trace (`tracer`)."""
