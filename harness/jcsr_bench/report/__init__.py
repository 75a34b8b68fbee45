"""Reports: Markdown leaderboards, RD plots and visual comparisons."""
