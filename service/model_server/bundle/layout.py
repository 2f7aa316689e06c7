"""The file names inside a bundle directory and archive (no heavy imports: `fetch` runs in an init
container and should start fast)."""

ARTIFACT = "model.skops"
METADATA = "metadata.json"
# Left in the bundle directory by `model-server fetch --record-failure` (the chart's init container)
# when the bundle could not be fetched: the server then starts, stays live and not ready, and gives
# this file's one line as the reason, instead of the pod crash-looping on the init container.
FETCH_FAILED = "FETCH_FAILED"
