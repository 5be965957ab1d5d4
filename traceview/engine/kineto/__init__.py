"""Chrome/Kineto JSON in, canonical JSON for the trace processor out (see pipeline.py)."""
