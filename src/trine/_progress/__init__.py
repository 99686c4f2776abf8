"""The live progress display: :func:`trine.progress`, ``progress=True`` and ``trine run``'s.

- ``_render``: the pieces ``trine run`` shares (spinner, bar, clock, ETA, the live area);
- ``_display``: whether to draw, and the Trio task that redraws a frame;
- ``_frames``: what a frame shows of a pipeline, a graph or a map;
- ``_target``: :func:`trine.progress` itself.

Nothing is imported here, so that :mod:`trine._map` can use ``_display``
without importing the modules that ``_target`` reads.
"""
