"""Speed benchmarks: each module has a ``main()`` that prints its figures (``python -m bench``)."""
