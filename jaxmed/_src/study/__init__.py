"""Monte Carlo studies: runner, chunk store, summaries, figures (public API: ``jaxmed.study``)."""
