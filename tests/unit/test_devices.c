/* The guest-facing pieces that need no VM: the agent's base64, the cloud-init user-data, OVMF's descriptors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/stat.h>

#include "agent.h"
#include "cloud_init.h"
#include "firmware.h"
#include "test_helpers.h"

static void test_base64(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(agent_base64_decode("aGVsbG8gd29ybGQK", out), 12);
	assert_memory_equal(out, "hello world\n", 12);
	assert_int_equal(agent_base64_decode("YQ==", out), 1);
	assert_int_equal(out[0], 'a');
	assert_int_equal(agent_base64_decode("", out), 0);
	assert_int_equal(agent_base64_decode("AAEC/w==", out), 4);
	assert_memory_equal(out, "\x00\x01\x02\xff", 4);
	assert_int_equal(agent_base64_decode("a!b=", out), -1);
	/* the command's stdin for guest-exec's input-data: every padding case, and bytes with the high bit set */
	{
		static const struct { const char *in; size_t len; const char *out; } cases[] = {
			{ "", 0, "" }, { "a", 1, "YQ==" }, { "ab", 2, "YWI=" }, { "abc", 3, "YWJj" },
			{ "hello world\n", 12, "aGVsbG8gd29ybGQK" }, { "\0\1\2\xff", 4, "AAEC/w==" },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			char *enc = agent_base64_encode(cases[i].in, cases[i].len);

			assert_string_equal(enc, cases[i].out);
			assert_int_equal(agent_base64_decode(enc, out), (long)cases[i].len);
			assert_memory_equal(out, cases[i].in, cases[i].len);
			free(enc);
		}
	}
}

static void test_cloud_init_user_data(void **state)
{
	struct vm_config cfg = { 0 };
	struct share_config share = { .name = "src", .tag = "src", .mount = "/src", .readonly = true };
	struct strv keys = STRV_INIT;
	char *text;

	(void)state;
	cfg.name = "dev";
	cfg.cloud_user = "alice";
	cfg.shares = &share;
	cfg.n_shares = 1;
	strv_push(&keys, "ssh-ed25519 AAAAC3Nza alice@host: \"laptop\" # main");
	text = cloud_init_user_data(&cfg, &keys);
	assert_true(!strncmp(text, "#cloud-config\n", 14));
	assert_non_null(strstr(text, "  - name: alice\n    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n"));
	/* a key comment's ':' '"' and '#' stay inside one YAML string */
	assert_non_null(strstr(text, "      - \"ssh-ed25519 AAAAC3Nza alice@host: \\\"laptop\\\" # main\"\n"));
	assert_non_null(strstr(text, "mounts:\n  - [ src, /src, virtiofs, \"ro,nofail\", \"0\", \"0\" ]\n"));
	free(text);
	strv_free(&keys);
}

static void write_descriptor(const char *dir, const char *name, const char *code, const char *features)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *text = xasprintf("{ \"interface-types\": [\"uefi\"], \"mapping\": { \"device\": \"flash\", \"executable\": "
			       "{ \"filename\": \"%s\", \"format\": \"raw\" }, \"nvram-template\": { \"filename\": "
			       "\"/vars.fd\", \"format\": \"raw\" } }, \"targets\": [ { \"architecture\": \"x86_64\", "
			       "\"machines\": [\"pc-q35-*\"] } ], \"features\": [%s] }",
			       code, features);

	write_file_n(path, text, strlen(text));
	free(text);
	free(path);
}

static void test_firmware_descriptors(void **state)
{
	char *sys = test_dir(), *etc = test_dir();
	const char *dirs[] = { etc, sys, NULL };
	struct firmware f;

	(void)state;
	write_descriptor(sys, "40-secure.json", "/secure.fd", "\"secure-boot\", \"enrolled-keys\", \"requires-smm\"");
	write_descriptor(sys, "60-plain.json", "/plain.fd", "\"acpi-s3\"");
	write_descriptor(sys, "50-smm.json", "/smm.fd", "\"requires-smm\"");
	assert_int_equal(firmware_find(dirs, false, &f), 0);
	assert_string_equal(f.code, "/plain.fd"); /* never one that needs SMM or Secure Boot */
	assert_string_equal(f.vars_template, "/vars.fd");
	firmware_free(&f);
	assert_int_equal(firmware_find(dirs, true, &f), 0);
	assert_string_equal(f.code, "/secure.fd");
	assert_true(f.secure_boot);
	firmware_free(&f);
	/* a name in the first directory hides the same name in the second */
	write_descriptor(etc, "60-plain.json", "/local.fd", "");
	assert_int_equal(firmware_find(dirs, false, &f), 0);
	assert_string_equal(f.code, "/local.fd");
	firmware_free(&f);
	assert_int_equal(firmware_find((const char *[]){ "/nonexistent", NULL }, false, &f), -ENOENT);
	free(sys);
	free(etc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_cloud_init_user_data),
		cmocka_unit_test(test_firmware_descriptors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
