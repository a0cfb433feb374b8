"""Reports: pcapng captures, tables and sequence diagrams."""
