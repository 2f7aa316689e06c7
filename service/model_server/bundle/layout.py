"""The file names inside a bundle directory and archive (no heavy imports: `fetch` runs in an init
container and should start fast)."""

ARTIFACT = "model.skops"
METADATA = "metadata.json"
