"""Refit the combined matcher's parameters (configs/matcher/combined.yaml) on human labels.

    python scripts/fit_combined.py ../shared/validation/realsumm-dev [--c 1.0]

Fits a standardised logistic regression on every (summary, SCU) pair's features and writes the
parameters. The numbers to quote are the held-out ones from `bench meta-eval DIR --matcher combined`,
which refits the same model inside a cross-validation by documents."""
from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import numpy as np
import yaml

from bench.matchers.neural import COMBINED_FEATURES, CombinedMatcher
from bench.reporting.metaeval import fit_logistic, load_realsumm, unit_pairs

COMBINED_YAML = Path(__file__).resolve().parent.parent / "configs" / "matcher" / "combined.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--c", type=float, default=1.0, help="inverse L2 regularisation strength")
    ap.add_argument("--out", type=Path, default=COMBINED_YAML)
    args = ap.parse_args()
    data = load_realsumm(args.data)
    zero = {f: 0.0 for f in COMBINED_FEATURES}
    matcher = CombinedMatcher(coefficients=zero, intercept=0.0, means=zero, scales={f: 1.0 for f in zero})
    pairs, keys = unit_pairs(data, data.units)
    y = np.array([data.labels[s][i][j] for i, s, j in keys])
    params = fit_logistic(matcher.featurize(pairs), y, args.c)
    rounded = {k: ({f: round(v, 6) for f, v in p.items()} if isinstance(p, dict) else round(p, 6))
               for k, p in params.items()}
    doc = {"_target_": "bench.matchers.neural.CombinedMatcher", "model": matcher.model_id,
           "support_threshold": 0.5, "align_threshold": 0.5, "alignment": "max", **rounded,
           "fitted_on": f"{args.data.name}: {len(data.ids)} documents, {len(y)} labels, C={args.c}, "
                        f"{datetime.date.today().isoformat()}"}
    header = ("# Combined matcher: logistic regression over cheap signals (bench.matchers.neural.COMBINED_FEATURES).\n"
              "# Written by scripts/fit_combined.py; refit with:\n"
              f"#   python scripts/fit_combined.py {args.data}\n"
              "# Held-out quality (cross-validation by documents): bench meta-eval DIR --matcher combined\n")
    args.out.write_text(header + yaml.safe_dump(doc, sort_keys=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
