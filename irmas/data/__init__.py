"""Data sets in the IRMAS layouts: reading them, downloading the real one, rendering synthetic ones."""
