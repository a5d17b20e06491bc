# Test disk images, included by the top-level Makefile (which sets BUILD). tests/images/README.md.
# `make debian-image` (as root) builds $(BUILD)/images/debian12.raw once; it is rebuilt only when
# build-debian.sh changes. The build needs network access to the Debian mirror the host's apt uses.

# Debian packages on the host: building the image (debootstrap ... zerofree), then booting it in the
# tests (cloud-init seed: dosfstools + mtools; overlays: qemu-utils; UEFI: ovmf; ssh: openssh-client).
DEPS_IMAGES := debootstrap debian-archive-keyring wget gdisk dosfstools mtools e2fsprogs \
	util-linux mount zerofree qemu-utils ovmf openssh-client

DEBIAN_IMAGE := $(BUILD)/images/debian12.raw

# Do not let this fragment's first target become the default goal when included before `all`.
images_saved_goal := $(.DEFAULT_GOAL)

.PHONY: debian-image
debian-image: $(DEBIAN_IMAGE)

# Built under a temporary name and renamed: a failed or interrupted build never leaves a half-built
# image under the final name.
$(DEBIAN_IMAGE): tests/images/build-debian.sh
	@mkdir -p $(dir $@)
	@rm -f $@.tmp
	bash tests/images/build-debian.sh $@.tmp || { rm -f $@.tmp; exit 1; }
	mv -f $@.tmp $@

.DEFAULT_GOAL := $(images_saved_goal)
