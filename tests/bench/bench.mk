# Benchmarks (not tests): `make bench` runs them all; each prints a Markdown table. See tests/bench/README.md.
BENCH_CFLAGS := -O2 -g
BENCH_ARGS ?=
POPULATE_BENCH_SRC := tests/bench/populate_bench.c storage/populate.c launcher/command.c launcher/log.c \
	launcher/strv.c

.PHONY: bench bench-populate
bench: bench-populate

# Built from its sources with -O2 and no sanitizers: the numbers are the code's, not ASan's.
$(BUILD)/bench/populate_bench: $(POPULATE_BENCH_SRC) storage/populate.h launcher/command.h launcher/log.h \
		launcher/strv.h
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(BENCH_CFLAGS) $(CPPFLAGS) $(PKG_CFLAGS) -o $@ $(POPULATE_BENCH_SRC) $(PKG_LIBS)

# BENCH_ARGS=--sweep: populate_copy's queue depth, buffer size and O_DIRECT instead of the comparison.
bench-populate: $(BUILD)/bench/populate_bench
	$(BUILD)/bench/populate_bench $(BENCH_ARGS)
