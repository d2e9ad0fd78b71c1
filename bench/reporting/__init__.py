"""Reading finished runs: run records, the leaderboard, comparisons, the HTML report, validity and meta-evaluation."""
