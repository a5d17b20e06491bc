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
#include "credentials.h"
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

/* A static address: network-config names that NIC by its MAC with the address and route, and every other NIC with a
 * backend by its MAC with DHCP (the seed's network-config replaces cloud-init's DHCP fallback); none without one. */
static void test_cloud_init_network_config(void **state)
{
	struct net_config nets[3] = {
		{ .name = "lan", .mode = NET_TAP, .address = "192.168.77.2/24", .gateway = "192.168.77.1" },
		{ .name = "up", .mode = NET_USER },
		{ .name = "off", .mode = NET_NONE },
	};
	struct net_plan np[3] = {
		{ .cfg = &nets[0], .mac = "52:54:00:00:00:01" },
		{ .cfg = &nets[1], .mac = "52:54:00:00:00:02" },
		{ .cfg = &nets[2], .mac = "52:54:00:00:00:03" },
	};
	struct plan p = { .nets = np, .n_nets = 3 };
	char *text;

	(void)state;
	text = cloud_init_network_config(&p);
	assert_non_null(text);
	assert_string_equal(text, "version: 2\nethernets:\n"
				  "  lan:\n    match:\n      macaddress: \"52:54:00:00:00:01\"\n"
				  "    addresses: [\"192.168.77.2/24\"]\n"
				  "    routes:\n      - to: 0.0.0.0/0\n        via: \"192.168.77.1\"\n"
				  "  up:\n    match:\n      macaddress: \"52:54:00:00:00:02\"\n    dhcp4: true\n");
	free(text);
	nets[0].address = NULL;
	nets[0].gateway = NULL;
	assert_null(cloud_init_network_config(&p));
}

/* user-data = FILE: a #cloud-config file joins the keys as a second MIME part that appends; anything else stays. */
static void test_cloud_init_merge_user_data(void **state)
{
	struct strv keys = STRV_INIT, none = STRV_INIT;
	const char *file = "#cloud-config\nruncmd:\n  - [touch, /made-by-user-data]\n";
	char *text, *first, *second, *boundary;

	(void)state;
	strv_push(&keys, "ssh-ed25519 AAAAC3Nza alice@host");
	text = cloud_init_merge_user_data(file, &keys);
	assert_non_null(text);
	assert_true(!strncmp(text, "Content-Type: multipart/mixed; boundary=\"==vmlaunch-", 52));
	boundary = xstrndup(text + 41, strcspn(text + 41, "\""));
	first = strstr(text, "filename=\"user-data\"\n\n");
	second = strstr(text, "filename=\"vmlaunch-keys\"\n\n");
	assert_non_null(first);
	assert_non_null(second);
	assert_true(first < second); /* the file first: ours merges into it */
	assert_true(!strncmp(first + 22, file, strlen(file))); /* as written */
	assert_non_null(strstr(text, "Merge-Type: dict(recurse_array,no_replace)+list(append)\n"));
	assert_non_null(strstr(second, "#cloud-config\nssh_authorized_keys:\n  - \"ssh-ed25519 AAAAC3Nza alice@host\"\n--"));
	{
		char *end = xasprintf("--%s--\n", boundary);

		assert_true(strlen(text) > strlen(end) && !strcmp(text + strlen(text) - strlen(end), end));
		free(end);
	}
	free(boundary);
	free(text);
	/* not cloud-config (a script), or no keys: used as written */
	assert_null(cloud_init_merge_user_data("#!/bin/sh\necho hi\n", &keys));
	assert_null(cloud_init_merge_user_data("#cloud-config-archive\n- type: text/x-shellscript\n", &keys));
	assert_null(cloud_init_merge_user_data(file, &none));
	strv_free(&keys);
}

/* SMBIOS type 11 credentials: RFC 4648 base64, and the strings systemd's import-creds.c looks for. */
static void test_smbios_credentials(void **state)
{
	static const char *const vectors[][2] = { { "", "" },	       { "f", "Zg==" },		{ "fo", "Zm8=" },
						   { "foo", "Zm9v" },   { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
						   { "foobar", "Zm9vYmFy" } };
	struct vm_config cfg = { 0 };
	struct strv out = STRV_INIT;

	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		char *b = credential_base64(vectors[i][0], strlen(vectors[i][0]));

		assert_string_equal(b, vectors[i][1]);
		free(b);
	}
	cfg.name = "web";
	strv_push(&cfg.cloud_key_lines, "ssh-ed25519 AAAA a@b");
	strv_push(&cfg.cloud_key_lines, "ssh-rsa BBBB c@d");
	credentials_smbios(&cfg, &out);
	assert_int_equal(out.n, 2);
	/* base64 of "ssh-ed25519 AAAA a@b\nssh-rsa BBBB c@d\n": both keys, one per line */
	assert_string_equal(out.v[0], "type=11,value=io.systemd.credential.binary:ssh.authorized_keys.root="
				      "c3NoLWVkMjU1MTkgQUFBQSBhQGIKc3NoLXJzYSBCQkJCIGNAZAo=");
	assert_string_equal(out.v[1], "type=11,value=io.systemd.credential:system.hostname=web");
	strv_free(&out);
	strv_free(&cfg.cloud_key_lines);
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
		cmocka_unit_test(test_cloud_init_merge_user_data),
		cmocka_unit_test(test_cloud_init_network_config),
		cmocka_unit_test(test_smbios_credentials),
		cmocka_unit_test(test_firmware_descriptors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
