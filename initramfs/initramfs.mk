# Make fragment for the bundled test guest (include it from the top-level Makefile, which runs from the repo root).
#
# Targets:   guest (the three files below), clean-guest
# Files:     $(GUEST_VMLINUX) = $(BUILD)/vmlinux, $(GUEST_INITRAMFS) = $(BUILD)/initramfs.cpio.gz,
#            $(GUEST_MODULES_IMAGE) = $(BUILD)/modules.img (the modules disk for vmlaunch.modules=SERIAL)
# Variables: BUILD (default build), GUEST_KVER (default: newest /lib/modules/V that has /boot/vmlinuz-V),
#            GUEST_CC, GUEST_CFLAGS (the agent is built on its own flags: CFLAGS may carry sanitizers, which a
#            static PID 1 cannot use), GUEST_MODULES, GUEST_MODULES_EXT4, GUEST_MODULES_VIRTIOFS, GUEST_MODULES_NET,
#            GUEST_MODULES_ROOT and GUEST_BUSYBOX (see build.sh).

BUILD ?= build
GUEST_DIR := initramfs
GUEST_BUILD_SH := $(GUEST_DIR)/build.sh
ifeq ($(origin GUEST_KVER),undefined)
GUEST_KVER := $(shell $(GUEST_BUILD_SH) default-kver 2>/dev/null)
endif
GUEST_MODULES_ROOT ?= /lib/modules
GUEST_BUSYBOX ?= /bin/busybox
GUEST_CC ?= gcc
GUEST_CFLAGS ?= -static -Os -s -std=gnu11 -Wall -Wextra -Werror
# Without a kernel the stamp rule below stops the build with a message saying so.
GUEST_KERNEL_IMAGE := $(if $(GUEST_KVER),/boot/vmlinuz-$(GUEST_KVER))
GUEST_MODULES_DEP := $(if $(GUEST_KVER),$(GUEST_MODULES_ROOT)/$(GUEST_KVER)/modules.dep)

GUEST_VMLINUX := $(BUILD)/vmlinux
GUEST_INITRAMFS := $(BUILD)/initramfs.cpio.gz
GUEST_MODULES_IMAGE := $(BUILD)/modules.img
GUEST_AGENT := $(BUILD)/guest/vmlaunch-guest
# Stamps hold a setting and are rewritten only when it changes: switching GUEST_KVER or GUEST_MODULES rebuilds
# what depends on it even though no input file is newer.
GUEST_KVER_STAMP := $(BUILD)/guest/kernel-version
GUEST_MODULES_STAMP := $(BUILD)/guest/modules

.PHONY: guest clean-guest guest-check-settings
guest: $(GUEST_VMLINUX) $(GUEST_INITRAMFS) $(GUEST_MODULES_IMAGE)

guest-check-settings:
	@test -n '$(GUEST_KVER)' || { echo 'initramfs.mk: no guest kernel found (set GUEST_KVER)' >&2; exit 1; }

$(GUEST_KVER_STAMP): guest-check-settings
	@mkdir -p $(@D)
	@echo '$(GUEST_KVER)' | cmp -s - $@ || echo '$(GUEST_KVER)' >$@

$(GUEST_MODULES_STAMP): guest-check-settings
	@mkdir -p $(@D)
	@echo '$(GUEST_MODULES);$(GUEST_MODULES_EXT4);$(GUEST_MODULES_VIRTIOFS);$(GUEST_MODULES_NET)' | cmp -s - $@ || \
		echo '$(GUEST_MODULES);$(GUEST_MODULES_EXT4);$(GUEST_MODULES_VIRTIOFS);$(GUEST_MODULES_NET)' >$@

$(GUEST_VMLINUX): $(GUEST_BUILD_SH) $(GUEST_KERNEL_IMAGE) $(GUEST_KVER_STAMP)
	@mkdir -p $(@D)
	$(GUEST_BUILD_SH) vmlinux $(GUEST_KVER) $@

$(GUEST_AGENT): $(GUEST_DIR)/guest_agent.c launcher/guest_protocol.h
	@mkdir -p $(@D)
	$(GUEST_CC) $(GUEST_CFLAGS) -Ilauncher -o $@ $<

$(GUEST_INITRAMFS): $(GUEST_BUILD_SH) $(GUEST_DIR)/init $(GUEST_DIR)/power-button $(GUEST_DIR)/udhcpc.script \
		$(GUEST_AGENT) $(GUEST_KERNEL_IMAGE) $(GUEST_MODULES_DEP) $(GUEST_BUSYBOX) $(GUEST_KVER_STAMP) \
		$(GUEST_MODULES_STAMP)
	@mkdir -p $(@D)
	GUEST_BUSYBOX=$(GUEST_BUSYBOX) GUEST_MODULES_ROOT=$(GUEST_MODULES_ROOT) $(if $(GUEST_MODULES),GUEST_MODULES='$(GUEST_MODULES)') \
		$(if $(GUEST_MODULES_EXT4),GUEST_MODULES_EXT4='$(GUEST_MODULES_EXT4)') \
		$(if $(GUEST_MODULES_VIRTIOFS),GUEST_MODULES_VIRTIOFS='$(GUEST_MODULES_VIRTIOFS)') \
		$(if $(GUEST_MODULES_NET),GUEST_MODULES_NET='$(GUEST_MODULES_NET)') \
		$(GUEST_BUILD_SH) initramfs $(GUEST_KVER) $@ $(GUEST_DIR)/init $(GUEST_AGENT) $(GUEST_DIR)/power-button \
			$(GUEST_DIR)/udhcpc.script

# The whole /lib/modules/KVER (~400 MB with Debian's kernel) on an ext4 image: the guest loads xfs, btrfs and
# anything else a root image needs from it, and the image's own udev and modprobe find the bundled kernel's modules.
$(GUEST_MODULES_IMAGE): $(GUEST_BUILD_SH) $(GUEST_MODULES_DEP) $(GUEST_KVER_STAMP)
	@mkdir -p $(@D)
	GUEST_MODULES_ROOT=$(GUEST_MODULES_ROOT) $(GUEST_BUILD_SH) modules-image $(GUEST_KVER) $@

clean-guest:
	rm -rf $(GUEST_VMLINUX) $(GUEST_INITRAMFS) $(GUEST_MODULES_IMAGE) $(BUILD)/guest
