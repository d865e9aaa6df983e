"""What the study harnesses under ``benchmarks/`` share, written once.

- :mod:`.timing`: interleaved medians on a shared, noisy machine; one call's milliseconds and peak memory.
- :mod:`.runs`: a training run of a study (:class:`~.runs.Run`), its record, and a pool that runs many.
- :mod:`.tables`: scores as mean ± std over seeds, the majority-class line, a GLUE dev set in batches.
- :mod:`.extents`: learned-looking extents and taps, and extents a trained model exported.
- :mod:`.params`: parameter counts from a config, without materialising weights.
"""
