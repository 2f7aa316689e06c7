"""The wire protocols: pure functions between request bytes and rows, and between a prediction and
response bytes (named features, KServe V1, Open Inference Protocol V2).

They import the light value types (``model_server.types``) and the input schema
(``model_server.features``), never the runtime, the bundle loader, scikit-learn or the web framework.
"""
