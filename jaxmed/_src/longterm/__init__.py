"""Long-term treatment effects from short A/B tests (spec longterm.md)."""
