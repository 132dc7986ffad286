"""Layer-by-layer evaluation over data sets: metrics, bootstrap intervals, resumable runs."""
