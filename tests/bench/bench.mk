# Benchmarks (not tests): `make bench` runs them all; each prints a Markdown table. See tests/bench/README.md.
BENCH_CFLAGS := -O2 -g
BENCH_ARGS ?=
POPULATE_BENCH_SRC := tests/bench/populate_bench.c storage/populate.c storage/image_probe.c storage/image_convert.c \
	storage/source_view.c launcher/progress.c launcher/command.c launcher/process.c launcher/journal.c \
	launcher/privileges.c launcher/test_hook.c launcher/log.c launcher/strv.c launcher/fdio.c

# VM benchmarks: seconds per fio workload (BENCH_SECONDS=5 for a smoke run), interleaved rounds, and the exploration's
# seconds per workload. They write tests/bench/results/*.json and regenerate tests/bench/results.md and guest-io.png.
# The exploration compares knobs worth 10-30% on a host whose neighbours move single runs by as much: 5 rounds,
# unless BENCH_ROUNDS is given (then it follows it, e.g. BENCH_ROUNDS=1 for a smoke run).
ifndef BENCH_EXPLORE_ROUNDS
BENCH_EXPLORE_ROUNDS := $(if $(BENCH_ROUNDS),$(BENCH_ROUNDS),5)
endif
BENCH_SECONDS ?= 20
BENCH_ROUNDS ?= 3
BENCH_EXPLORE_SECONDS ?= 10
BENCH_PY := /usr/bin/python3
BENCH_ENV := BUILD=$(abspath $(BUILD)) VMLAUNCH=$(abspath $(BUILD)/vmlaunch) BENCH_SECONDS=$(BENCH_SECONDS) \
	BENCH_ROUNDS=$(BENCH_ROUNDS) BENCH_EXPLORE_SECONDS=$(BENCH_EXPLORE_SECONDS) BENCH_EXPLORE_ROUNDS=$(BENCH_EXPLORE_ROUNDS)
# The bundled guest plus fio (an uncompressed second cpio: see fio-overlay.sh for why not gzip'd).
BENCH_OVERLAY := $(BUILD)/bench/fio-overlay.cpio
BENCH_INITRD := $(BUILD)/bench/initramfs-fio.cpio
# Debian packages the VM benchmarks use; installed when missing (root), like `make deps`.
BENCH_DEPS := fio strace gnuplot-nox cpio
BENCH_LIBVIRT_DEPS := libvirt-daemon-system libvirt-clients
# bench-net: iperf3 (its binary and libraries go into the guest over a share) and passt, the backend compared
BENCH_NET_DEPS := iperf3 passt

.PHONY: bench bench-populate bench-io bench-explore bench-launch bench-libvirt bench-guest bench-deps bench-report \
	bench-smoke bench-share bench-net bench-snapshot
# All of it, one VM at a time: at the defaults about 2 h 45 min on this 2-CPU TCG host (io ~70 min, explore ~70 min,
# launch ~3 min, libvirt ~5 min, populate ~5 min; more when neighbours load the CPUs).
bench: bench-populate bench-io bench-explore bench-launch bench-libvirt bench-share bench-net bench-snapshot

# Every variant once, briefly (~25 min here): proves the tooling, the numbers mean little.
bench-smoke:
	$(MAKE) bench-io bench-explore bench-launch bench-libvirt BENCH_SECONDS=5 BENCH_EXPLORE_SECONDS=5 BENCH_ROUNDS=1 \
		BENCH_EXPLORE_ROUNDS=1

# Built from its sources with -O2 and no sanitizers: the numbers are the code's, not ASan's.
$(BUILD)/bench/populate_bench: $(POPULATE_BENCH_SRC) storage/populate.h launcher/command.h launcher/log.h \
		launcher/strv.h
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(BENCH_CFLAGS) $(CPPFLAGS) $(PKG_CFLAGS) -o $@ $(POPULATE_BENCH_SRC) $(PKG_LIBS)

# BENCH_ARGS=--sweep: populate_copy's queue depth, buffer size and O_DIRECT instead of the comparison.
# The output is also kept in tests/bench/results/populate.md for results.md.
bench-populate: $(BUILD)/bench/populate_bench
	@mkdir -p tests/bench/results
	@echo "$$(date '+%Y-%m-%d %H:%M')|$$(cut -d' ' -f1-3 /proc/loadavg)" >tests/bench/results/populate.md.meta
	bash -o pipefail -c '$(BUILD)/bench/populate_bench $(BENCH_ARGS) | tee tests/bench/results/populate.md.tmp'
	mv tests/bench/results/populate.md.tmp tests/bench/results/populate.md
	$(BENCH_ENV) $(BENCH_PY) tests/bench/report.py

bench-deps:
	@missing=$$(for p in $(BENCH_DEPS) $(if $(filter bench-libvirt bench,$(MAKECMDGOALS)),$(BENCH_LIBVIRT_DEPS)) \
		$(if $(filter bench-net bench,$(MAKECMDGOALS)),$(BENCH_NET_DEPS)); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing: $$missing"; \
		[ "$$(id -u)" = 0 ] || { echo "make bench: run as root to install: $$missing" >&2; exit 1; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BENCH_OVERLAY): tests/bench/fio-overlay.sh $(GUEST_INITRAMFS) /usr/bin/fio
	@mkdir -p $(@D)
	tests/bench/fio-overlay.sh $(GUEST_INITRAMFS) $@

# The kernel takes an uncompressed archive that follows a compressed one only at a 4-byte aligned offset (else:
# "Initramfs unpacking failed: invalid magic at start of compressed archive"), and skips zero bytes between
# archives: pad the gzip'd guest with zeros to a multiple of 512.
$(BENCH_INITRD): $(GUEST_INITRAMFS) $(BENCH_OVERLAY)
	{ cat $(GUEST_INITRAMFS); head -c $$(( (512 - $$(stat -c %s $(GUEST_INITRAMFS)) % 512) % 512 )) /dev/zero; \
		cat $(BENCH_OVERLAY); } >$@.tmp && mv $@.tmp $@

# build/bench/initramfs-fio.cpio: the bundled guest with fio, for [boot] initrd of the I/O configs.
bench-guest: bench-deps
	$(MAKE) $(BUILD)/vmlaunch guest $(BENCH_INITRD)

# BENCH_IO_ARGS=--resume continues an interrupted run from its last complete round.
bench-io: bench-guest
	$(BENCH_ENV) $(BENCH_PY) tests/bench/guest_io.py $(BENCH_IO_ARGS)

bench-explore: bench-guest
	$(BENCH_ENV) $(BENCH_PY) tests/bench/explore.py

bench-launch: bench-deps
	$(MAKE) $(BUILD)/vmlaunch guest
	$(BENCH_ENV) $(BENCH_PY) tests/bench/launch.py
	$(BENCH_ENV) $(BENCH_PY) tests/bench/start_floor.py

bench-libvirt: bench-deps
	$(MAKE) $(BUILD)/vmlaunch guest
	$(BENCH_ENV) $(BENCH_PY) tests/bench/libvirt_bench.py

# Shares (issue 20) and networking (issue 21): the Debian test image's userland on the bundled kernel.
bench-share: bench-deps
	$(MAKE) $(BUILD)/vmlaunch guest debian-image
	$(BENCH_ENV) $(BENCH_PY) tests/bench/share_bench.py
	$(BENCH_ENV) $(BENCH_PY) tests/bench/report.py

bench-net: bench-deps
	$(MAKE) $(BUILD)/vmlaunch guest debian-image
	$(BENCH_ENV) $(BENCH_PY) tests/bench/net_bench.py
	$(BENCH_ENV) $(BENCH_PY) tests/bench/report.py

# Warm start (issue 23): boot against restore from a snapshot, the Debian image with its own systemd restored, and 8
# concurrent restores (~10 min here, most of it the Debian boots before the saves).
bench-snapshot:
	$(MAKE) $(BUILD)/vmlaunch guest debian-image
	$(BENCH_ENV) $(BENCH_PY) tests/bench/snapshot_bench.py
	$(BENCH_ENV) $(BENCH_PY) tests/bench/report.py

# results.md and guest-io.png from the JSON already in tests/bench/results/
bench-report:
	$(BENCH_ENV) $(BENCH_PY) tests/bench/report.py
