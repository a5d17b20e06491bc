# Fuzzing the config parser and the pure planner behind it (see tests/fuzz/README.md). Included by the top Makefile.
# `make fuzz` fuzzes for FUZZ_SECONDS; `make fuzz-regress` replays the seeds and past crashes once, in seconds.
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_ARGS ?=
# libFuzzer's runtime is in libclang-rt-14-dev on Debian 12; `make deps` installs both.
DEPS_FUZZ := clang libclang-rt-14-dev
DEPS += $(DEPS_FUZZ)

FUZZ_SANITIZE := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# Only what config_load, plan_build and qemu_argv_build link against: no storage backend, and no host probe is called
# (topology.c is here for hugepage_size_name). A file elsewhere being mid-change cannot break this build; an
# "undefined reference" means one more file belongs here. --as-needed keeps what it does not call out of the binary.
FUZZ_LIB_SRC := launcher/config.c launcher/config_check.c launcher/config_load.c launcher/config_report.c launcher/config_values.c launcher/plan.c launcher/plan_cpus.c launcher/qemu_argv.c launcher/cpulist.c \
	launcher/topology.c launcher/numa_lib.c launcher/dl_lib.c launcher/fdio.c launcher/strv.c launcher/log.c launcher/credentials.c
FUZZ_SRC := tests/fuzz/fuzz_config.c $(FUZZ_LIB_SRC)
FUZZ_DICT := tests/fuzz/config.dict
FUZZ_CORPUS := $(BUILD)/fuzz/corpus
# Regression inputs: the seeds, and one input per bug the fuzzer found (named for the bug).
FUZZ_REGRESS := $(wildcard tests/fuzz/corpus/* tests/fuzz/crashes/*)

.PHONY: fuzz fuzz-regress

$(BUILD)/fuzz/fuzz_config: $(FUZZ_SRC) $(wildcard launcher/*.h storage/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(WARN) -O1 -g $(FUZZ_SANITIZE) $(CPPFLAGS) $(PKG_CFLAGS) -o $@ $(FUZZ_SRC) \
		-Wl,--as-needed $(PKG_LIBS)

# One job, in this process: -jobs=1 would run the same single job in a child writing to ./fuzz-0.log.
# The corpus grows in build/, never in the repository; each run starts from the previous run's corpus plus the seeds.
# libFuzzer exits non-zero on a crash, leak or UB report, and leaves the input in $(BUILD)/fuzz/crash-*.
fuzz: $(BUILD)/fuzz/fuzz_config
	@mkdir -p $(FUZZ_CORPUS)
	cp $(FUZZ_REGRESS) $(FUZZ_CORPUS)/
	$(BUILD)/fuzz/fuzz_config -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
		-dict=$(FUZZ_DICT) -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ $(FUZZ_ARGS) $(FUZZ_CORPUS)

# Each file run once, no mutation: a fixed bug that comes back fails here.
fuzz-regress: $(BUILD)/fuzz/fuzz_config
	@$(BUILD)/fuzz/fuzz_config -timeout=10 $(FUZZ_REGRESS) >$(BUILD)/fuzz/regress.log 2>&1 || \
		{ cat $(BUILD)/fuzz/regress.log; echo "fuzz-regress: FAILED (log: $(BUILD)/fuzz/regress.log)"; exit 1; }
	@echo "fuzz-regress: $(words $(FUZZ_REGRESS)) inputs, no crash, leak or UB"
