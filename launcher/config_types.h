/* The config's types: what struct vm_config holds once the file is read (config.h: the functions that read it).
 * Types alone, so that what sets one value (config_values.c) sits below the reader that calls it. */
#ifndef VMLAUNCH_CONFIG_TYPES_H
#define VMLAUNCH_CONFIG_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpulist.h"
#include "strv.h"

enum accel_choice { ACCEL_AUTO, ACCEL_KVM, ACCEL_TCG };
/* how a snapshot keeps guest RAM (snapshot.c): as a file mapped copy-on-write (default: faster, shared between
 * siblings; tests/bench/results.md section 7), or in qemu's migration stream */
enum snapshot_memory_choice { SNAPSHOT_MEMORY_SHARED, SNAPSHOT_MEMORY_STREAM };
enum disk_format { FORMAT_RAW, FORMAT_QCOW2 };
/* auto: the backend's fastest correct default; safe: flushes always honoured; unsafe: flushes ignored. */
enum cache_choice { CACHE_AUTO, CACHE_SAFE, CACHE_UNSAFE };
enum backend_kind { BACKEND_FILE, BACKEND_TMPFS, BACKEND_ZRAM, BACKEND_BRD, BACKEND_LVM, BACKEND_RBD, BACKEND_COUNT };
enum ms_mode { MS_MODE_DEFAULT, MS_MODE_CRC, MS_MODE_SECURE };
enum source_backing { SOURCE_BACKING_REFUSE, SOURCE_BACKING_ALLOW };

#define DISK_NAME_MAX 20 /* the disk name is the virtio serial, which holds 20 bytes */
#define VM_NAME_MAX 64

/* The `line` of a value that came from --set rather than the file. */
#define CONFIG_LINE_SET 0xffffffffu

/* The head of every named section ([disk NAME], [share NAME], ...): the parser finds and makes them alike. */
struct named_section {
	char *name;
	unsigned line; /* the [KIND NAME] header */
};

struct disk_config {
	char *name;
	unsigned line; /* the [disk NAME] header */

	enum backend_kind backend;
	unsigned backend_line;
	uint64_t size; /* 0 = not given */
	unsigned size_line;
	char *path; /* file backend: the image, resolved against the config's directory */
	unsigned path_line;
	char *source; /* populate from this image before boot: a path, or an http(s) URL (downloaded into a cache) */
	unsigned source_line;
	char *source_sha256; /* a URL's SHA-256, 64 lowercase hex digits: checked before the download is used */
	unsigned source_sha256_line;
	char *source_format; /* NULL: qcow2 by its magic, else raw */
	unsigned source_format_line;
	enum source_backing source_backing; /* whether the source may name other files (read as root) */
	unsigned source_backing_line;
	char *comp_algorithm; /* zram */
	unsigned comp_algorithm_line;
	char *vg; /* lvm: the volume group */
	unsigned vg_line;
	char *lv; /* lvm: the logical volume (default vmlaunch-VMNAME-DISK) */
	unsigned lv_line;
	char *thin_pool; /* lvm: a thin pool in vg; created (chunk 4M, no zeroing) when missing */
	unsigned thin_pool_line;
	uint64_t thin_pool_size;
	unsigned thin_pool_size_line;
	char *pool; /* rbd */
	unsigned pool_line;
	char *image; /* rbd: the image in pool (default vmlaunch-VMNAME-DISK) */
	unsigned image_line;
	char *rbd_namespace; /* rbd: optional namespace in pool */
	unsigned rbd_namespace_line;
	char *ceph_conf; /* rbd: default /etc/ceph/ceph.conf */
	unsigned ceph_conf_line;
	char *ceph_user; /* rbd: the cephx id (client.ID), default admin */
	unsigned ceph_user_line;
	char *keyring; /* rbd: default: what the ceph conf says */
	unsigned keyring_line;
	bool create; /* rbd: create the image when missing */
	unsigned create_line;
	char *clone_from; /* rbd: POOL/IMAGE@SNAP, a protected snapshot to clone */
	unsigned clone_from_line;
	enum ms_mode ms_mode; /* rbd: msgr v2 mode of the connection */
	unsigned ms_mode_line;
	enum disk_format format;
	unsigned format_line;
	bool ephemeral;
	unsigned ephemeral_line;
	bool readonly;
	unsigned readonly_line;
	enum cache_choice cache;
	unsigned cache_line;
};

/* [share NAME]: a host directory in the guest over virtiofs. */
struct share_config {
	char *name;
	unsigned line;
	char *path; /* the host directory (must exist) */
	unsigned path_line;
	bool readonly; /* default yes */
	unsigned readonly_line;
	char *mount; /* where the guest mounts it; default /mnt/NAME */
	unsigned mount_line;
	char *tag; /* the virtiofs tag; default NAME */
	unsigned tag_line;
};

enum net_mode { NET_USER, NET_NONE, NET_TAP };

/* [net NAME]: one virtio NIC. */
struct net_config {
	char *name;
	unsigned line;
	enum net_mode mode;
	unsigned mode_line;
	struct strv forwards; /* "tcp:[HOSTADDR:]HOSTPORT[+]-:GUESTPORT", as written */
	unsigned forwards_line;
	bool restricted; /* restrict = yes: no traffic beyond the host's forwards */
	unsigned restricted_line;
	char *mac; /* default: a locally administered address from the VM's and NIC's names */
	unsigned mac_line;
	char *bridge; /* tap: the bridge the tap joins */
	unsigned bridge_line;
	char *tap; /* tap: its name; default vml + a hash of the VM's and NIC's names */
	unsigned tap_line;
	char *address; /* tap: a static IPv4 address/prefix for the guest, set by cloud-init's network-config */
	unsigned address_line;
	char *gateway; /* with address: the default route's next hop */
	unsigned gateway_line;
};

enum hugepages_choice { HUGEPAGES_OFF, HUGEPAGES_2M, HUGEPAGES_1G };
enum firmware_choice { FIRMWARE_AUTO, FIRMWARE_BIOS, FIRMWARE_UEFI, FIRMWARE_UEFI_SECURE };
enum pin_choice { PIN_AUTO, PIN_OFF, PIN_LIST };
#define HOST_NODE_AUTO (-1)
enum allocator_choice { ALLOCATOR_TCMALLOC, ALLOCATOR_SYSTEM };
enum tier_backend { TIER_DRAM, TIER_FILE };

/* [memory tier NAME] (seed 002): one more guest NUMA node, backed by another memory tier of the host. */
struct tier_config {
	char *name;
	unsigned line;
	enum tier_backend backend;
	unsigned backend_line;
	char *path; /* file: a DAX device, a file, or a directory (qemu then makes and unlinks a file there) */
	unsigned path_line;
	uint64_t size;
	unsigned size_line;
	unsigned host_node;
	unsigned host_node_line; /* 0: any node */
};

struct vm_config {
	char *file; /* as the user named it: the prefix of every message */
	char *dir;  /* relative paths in the file are relative to this */

	char *name;
	unsigned name_line;
	unsigned cpus;
	unsigned cpus_line;
	uint64_t memory;
	unsigned memory_line;
	enum accel_choice accel;
	unsigned accel_line;
	char *machine;
	unsigned machine_line;
	char *console_log; /* NULL: the serial console is on stdio */
	unsigned console_log_line;
	char *snapshot; /* NULL: the default, CACHE/snapshots/NAME (snapshot.c) */
	unsigned snapshot_line;
	enum snapshot_memory_choice snapshot_memory;
	unsigned snapshot_memory_line;
	unsigned shutdown_timeout; /* seconds between system_powerdown and quit */
	unsigned shutdown_timeout_line;

	char *kernel;
	unsigned kernel_line;
	char *initrd;
	unsigned initrd_line;
	char *append; /* NULL or the user's words for the kernel command line */
	unsigned append_line;
	char *root; /* a [disk]'s name: the bundled init boots or runs the command in that disk's userland */
	unsigned root_line;
	char *modules; /* an ext4 image of the kernel's /lib/modules/VERSION, for root =; default modules.img beside kernel */
	unsigned modules_line;
	char *command_user; /* -- COMMAND runs as this user of the guest (default root) */
	unsigned command_user_line;
	unsigned agent_timeout; /* seconds to wait for qemu-guest-agent (-- COMMAND without a kernel) */
	unsigned agent_timeout_line;
	enum firmware_choice firmware; /* auto: bios with a kernel, uefi without one where OVMF is installed */
	unsigned firmware_line;
	char *nvram; /* uefi: a variable store kept across runs; NULL: a fresh copy per run in the state dir */
	unsigned nvram_line;
	bool tpm; /* a TPM 2.0 emulated by swtpm */
	unsigned tpm_line;
	char *tpm_state; /* a directory that keeps the TPM's state across runs; NULL: throwaway, in the state dir */
	unsigned tpm_state_line;

	unsigned cloud_init_line; /* the [cloud-init] header; 0: no seed */
	struct strv cloud_keys;   /* ssh-key =, or the invoking user's ~/.ssh/id_*.pub */
	unsigned cloud_keys_line;
	struct strv cloud_key_lines; /* each key file's first line, read when the config is loaded */
	char *cloud_user; /* the guest user made with the keys (default: the invoking user's name) */
	unsigned cloud_user_line;
	char *cloud_user_data; /* a #cloud-config file merged with the keys (cloud_init.c); anything else as written */
	unsigned cloud_user_data_line;
	bool cloud_merge_keys; /* merge-keys = yes (default): the keys join a #cloud-config user-data */
	unsigned cloud_merge_keys_line;

	char *qemu_binary;
	unsigned qemu_binary_line;
	struct strv qemu_extra;
	unsigned qemu_extra_line;

	enum hugepages_choice hugepages;
	unsigned hugepages_line;
	int host_node; /* HOST_NODE_AUTO or a node number */
	unsigned host_node_line;
	enum pin_choice pin;
	unsigned pin_line;
	struct cpulist pin_cpus; /* pin = LIST: the host CPU of each vCPU, in order ("2-5" or "2,3,4,5"), no repeats */
	struct cpulist pin_iothreads; /* host CPUs for the iothreads (with pin = LIST); empty: not given */
	unsigned pin_iothreads_line;
	struct cpulist pin_emulator; /* host CPUs for the rest of qemu (with pin = LIST); empty: not given */
	unsigned pin_emulator_line;
	enum allocator_choice allocator;
	unsigned allocator_line;
	char *qemu_user; /* run qemu as this user */
	unsigned qemu_user_line;

	struct disk_config *disks;
	size_t n_disks;
	struct tier_config *tiers;
	size_t n_tiers;
	struct share_config *shares;
	size_t n_shares;
	struct net_config *nets;
	size_t n_nets;
};

#endif
