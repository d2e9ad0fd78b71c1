"""Scripts beside the package: benchmarks, fitting, labelled samples. Run them as `python scripts/NAME.py`."""
