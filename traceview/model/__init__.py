"""Model: SQL rows from the trace processor -> steps, launches and categories as DataFrames."""
