"""The pipeline stages, in the order data flows: data -> clean -> facts -> consensus -> summarize -> score."""
