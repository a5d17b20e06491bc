# vmlaunch: `make run` installs what is missing, builds, and boots configs/demo.conf; `make check` runs every test.
BUILD ?= build
CC ?= gcc
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo 0.1)

# Debian packages: build, run, and test dependencies. `make deps` installs the missing ones.
DEPS_BUILD := gcc make pkg-config libinih-dev libjson-c-dev liburing-dev librbd-dev libnuma-dev \
	libgoogle-perftools-dev libcap-ng-dev libcmocka-dev libmnl-dev \
	libcurl4-openssl-dev nettle-dev
DEPS_RUN := qemu-system-x86 qemu-utils busybox-static linux-image-amd64 cpio xz-utils kmod swtpm libcurl4 libnuma1 \
	libmnl0
DEPS_TEST := python3 python3-pytest python3-rados python3-rbd iproute2 iputils-ping
include tests/images/images.mk
DEPS := $(DEPS_BUILD) $(DEPS_RUN) $(DEPS_TEST) $(DEPS_IMAGES)

PKG_CFLAGS := $(shell pkg-config --cflags inih json-c liburing 2>/dev/null)
# librbd and librados are not linked: storage/rbd_lib.c dlopens them for configs with an RBD disk (dlopen is in libc
# since glibc 2.34, Debian 12 has 2.36: no -ldl). librbd-dev stays a build dependency for their headers. Likewise
# libcurl (storage/curl_lib.c), for a source = URL; libnuma (launcher/numa_lib.c), on a host with more than one NUMA
# node (its constructor reads /proc and sysfs at every start); libmnl (launcher/mnl_lib.c), for a tap, since Debian
# ships it as a shared library only. The small libraries every run needs are linked in from their -dev packages' .a
# files (nettle for SHA-256 too), libc stays shared: each shared one cost every start a loader lookup, mmaps and
# relocations (~3 ms of CPU for five of them here). `ldd build/vmlaunch` shows libc alone.
PKG_LIBS := -Wl,-Bstatic $(shell pkg-config --libs inih json-c liburing 2>/dev/null || echo -linih -ljson-c -luring) \
	-lcap-ng -lnettle -Wl,-Bdynamic
WARN := -std=gnu11 -Wall -Wextra -Werror
CPPFLAGS += -Ilauncher -Istorage -DVMLAUNCH_VERSION='"$(VERSION)"'
CFLAGS ?= -O2 -g
# The release binary runs as root: built with what `DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags` gives on
# Debian 12 (fortified libc calls, stack canaries, a GOT read-only once started), at no start time measurable here
# (results.md 2b). The sanitized build has its own checks. For a debugger: `make HARDEN= CFLAGS='-O0 -g'` (fortifying
# needs -O).
HARDEN ?= -D_FORTIFY_SOURCE=2 -fstack-protector-strong -Wformat -Werror=format-security
HARDEN_LD ?= -Wl,-z,relro -Wl,-z,now
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRC := $(wildcard launcher/*.c storage/*.c)
LIB_SRC := $(filter-out launcher/main.c,$(SRC))
OBJ := $(SRC:%.c=$(BUILD)/obj/%.o)
SAN_OBJ := $(SRC:%.c=$(BUILD)/san/%.o)
SAN_LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/san/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps qemu-user run check unit system stress clean guest install uninstall
all: $(BUILD)/vmlaunch guest

# -MMD -MP: each object depends on the headers it really includes (build/**/*.d), not on every header.
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(WARN) $(CFLAGS) $(HARDEN) $(CPPFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC/SAN  $<"
	@$(CC) $(WARN) -O1 -g $(SAN) $(CPPFLAGS) $(PKG_CFLAGS) -MMD -MP -c $< -o $@

-include $(OBJ:.o=.d) $(SAN_OBJ:.o=.d)

# main.c prints the version: rebuild it whenever `git describe` changes, not only when main.c does.
$(BUILD)/version: FORCE
	@mkdir -p $(BUILD); echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
$(BUILD)/obj/launcher/main.o $(BUILD)/san/launcher/main.o: $(BUILD)/version
# Likewise the release objects and binary when their flags change (make tracks files, not the commands that made them).
RELEASE_FLAGS := $(CC) $(WARN) $(CFLAGS) $(HARDEN) $(HARDEN_LD)
$(BUILD)/cflags: FORCE
	@mkdir -p $(BUILD); echo '$(RELEASE_FLAGS)' | cmp -s - $@ || echo '$(RELEASE_FLAGS)' > $@
$(OBJ): $(BUILD)/cflags
.PHONY: FORCE
FORCE:

$(BUILD)/vmlaunch: $(OBJ) $(BUILD)/cflags
	$(CC) $(CFLAGS) $(HARDEN_LD) -o $@ $(OBJ) $(PKG_LIBS)

# The sanitized build the system tests run.
$(BUILD)/vmlaunch-san: $(SAN_OBJ)
	$(CC) $(SAN) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(SAN_LIB_OBJ) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	@$(CC) $(WARN) -O1 -g $(SAN) $(CPPFLAGS) $(PKG_CFLAGS) -Itests/unit -o $@ $< $(SAN_LIB_OBJ) $(PKG_LIBS) -lcmocka

include initramfs/initramfs.mk
-include tests/bench/bench.mk
-include tests/fuzz/fuzz.mk
guest: $(BUILD)/vmlinux $(BUILD)/initramfs.cpio.gz $(BUILD)/modules.img

# Installs only what is missing (apt-get update once, when something is); prints nothing when all is there.
deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing: $$missing"; \
		[ "$$(id -u)" = 0 ] || { echo "make deps: run as root to install: $$missing" >&2; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@$(MAKE) --no-print-directory qemu-user

# qemu's own unprivileged user (vmlaunch refuses to start qemu as root unless [qemu] user = root says so); in group
# kvm where there is one, for /dev/kvm.
QEMU_USER := vmlaunch-qemu
qemu-user:
	@id -u $(QEMU_USER) >/dev/null 2>&1 || { \
		[ "$$(id -u)" = 0 ] || { echo "make qemu-user: run as root to create the system user $(QEMU_USER)" >&2; exit 1; }; \
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
			$$(getent group kvm >/dev/null && echo --groups kvm) $(QEMU_USER); }

run: deps
	$(MAKE) all
	$(BUILD)/vmlaunch configs/demo.conf

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

system: $(BUILD)/vmlaunch $(BUILD)/vmlaunch-san guest
	VMLAUNCH=$(abspath $(BUILD)/vmlaunch-san) /usr/bin/python3 -m pytest -v tests/system

# The full randomized kill matrix (not part of check): ITERATIONS=200 by default; prints the number of leaks.
stress: deps
	$(MAKE) $(BUILD)/vmlaunch-san guest
	VMLAUNCH=$(abspath $(BUILD)/vmlaunch-san) /usr/bin/python3 tests/stress/kill_matrix.py

check: deps
	$(MAKE) all $(BUILD)/vmlaunch-san $(UNIT_BIN)
	$(MAKE) unit
	$(MAKE) fuzz-regress
	$(MAKE) debian-image
	$(MAKE) system

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR := $(PREFIX)/bin
SHAREDIR := $(PREFIX)/share/vmlaunch
EXAMPLES := $(PREFIX)/share/doc/vmlaunch/examples
UNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALLED := $(BINDIR)/vmlaunch $(SHAREDIR)/vmlinux $(SHAREDIR)/initramfs.cpio.gz $(SHAREDIR)/modules.img \
	$(SHAREDIR)/demo.conf \
	$(PREFIX)/share/man/man1/vmlaunch.1 $(PREFIX)/share/man/man5/vmlaunch.conf.5 $(UNITDIR)/vmlaunch@.service \
	$(PREFIX)/share/bash-completion/completions/vmlaunch $(patsubst configs/%,$(EXAMPLES)/%,$(wildcard configs/*.conf))

# Example configs name the bundled guest as `bundled`: vmlaunch finds it in $(SHAREDIR) from its own bin/.
install: all
	@[ -n "$(DESTDIR)" ] || $(MAKE) --no-print-directory qemu-user
	install -D -m 0755 $(BUILD)/vmlaunch $(DESTDIR)$(BINDIR)/vmlaunch
	install -D -m 0644 $(BUILD)/vmlinux $(DESTDIR)$(SHAREDIR)/vmlinux
	install -D -m 0644 $(BUILD)/initramfs.cpio.gz $(DESTDIR)$(SHAREDIR)/initramfs.cpio.gz
	install -D -m 0644 $(BUILD)/modules.img $(DESTDIR)$(SHAREDIR)/modules.img
	install -D -m 0644 configs/demo.conf $(DESTDIR)$(SHAREDIR)/demo.conf
	install -D -m 0644 launcher/man/vmlaunch.1 $(DESTDIR)$(PREFIX)/share/man/man1/vmlaunch.1
	install -D -m 0644 launcher/man/vmlaunch.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/vmlaunch.conf.5
	install -D -m 0644 launcher/vmlaunch.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/vmlaunch
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(EXAMPLES)
	sed 's|@BINDIR@|$(BINDIR)|g' launcher/vmlaunch@.service > $(DESTDIR)$(UNITDIR)/vmlaunch@.service
	install -m 0644 configs/*.conf $(DESTDIR)$(EXAMPLES)/

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(SHAREDIR) $(DESTDIR)$(EXAMPLES) $(DESTDIR)$(PREFIX)/share/doc/vmlaunch 2>/dev/null

clean:
	rm -rf $(BUILD)
