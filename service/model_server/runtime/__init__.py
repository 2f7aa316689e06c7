"""The model runtime: loads the bundle (``lifecycle``), calls the model (``predict``), gathers rows
of concurrent requests into shared calls (``batching``) and watches what it predicts (``observers``,
``drift``).

No web framework and no protocol here: the transports decode requests into rows and hand them to
``ModelRuntime.predict``.
"""
