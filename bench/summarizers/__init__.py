"""Summarizer implementations: extractive baselines, the oracle, and model backends (`llm`)."""
