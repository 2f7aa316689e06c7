"""Model bundles: a directory holding ``model.skops`` and ``metadata.json``.

Writing one: ``package`` (with ``artifact`` for reproducible bytes and ``reference`` for the drift
statistics). Reading one as the server does: ``load`` (checksum, versions, ``artifact_limits``,
``trust``, ``structure``). ``metadata`` is the JSON description and imports no scikit-learn;
``fetch`` downloads and unpacks a bundle archive in the chart's init container.

Nothing in this wing imports the runtime, the protocols or the web framework. This file imports
nothing, so ``model-server fetch`` starts without scikit-learn.
"""
