# What the cluster suite's model-source tests run besides the server image (tests/e2e/test_bucket_source.py):
# SeaweedFS's S3 gateway, the same pinned module `make tools` builds for tests/integration/storage, as a
# FROM-scratch image that each test starts in its own namespace. Built again with go-build.sh, which
# strips it: the tools build keeps debug info (230 MB), which every `make e2e` would copy into the node.

SEAWEEDFS_IMAGE := localhost/seaweedfs:$(SEAWEEDFS_VERSION)
SEAWEEDFS_CLUSTER_STAMP := $(STAMPS)/seaweedfs-stripped-$(SEAWEEDFS_VERSION)
$(SEAWEEDFS_CLUSTER_STAMP):
	nice -n 10 $(GO_BUILD_SH) --name seaweedfs --module github.com/seaweedfs/seaweedfs --version $(SEAWEEDFS_VERSION) \
	  --out $(CLUSTER_BIN) --pkg ./weed
	@mkdir -p $(STAMPS) && touch $@

.PHONY: seaweedfs-image
seaweedfs-image: image-tools $(SEAWEEDFS_CLUSTER_STAMP)
	$(BUILD_IMAGE) static seaweedfs $(SEAWEEDFS_VERSION) $(CLUSTER_BIN)/weed

# make e2e builds and loads it too (E2E_IMAGES, E2E_ENV: mk/cluster.mk), and passes its reference to the
# tests.
e2e-load: seaweedfs-image
E2E_IMAGES += $(SEAWEEDFS_IMAGE)
E2E_ENV += E2E_SEAWEEDFS_IMAGE=$(SEAWEEDFS_IMAGE)
