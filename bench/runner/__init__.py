"""Running a benchmark: config validation, the pipeline over the stages, caching, signatures."""
