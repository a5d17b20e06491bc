/* vmlaunch's cache directory, shared by what it keeps across runs (qemu's capabilities, downloaded images). */
#ifndef VMLAUNCH_CACHE_DIR_H
#define VMLAUNCH_CACHE_DIR_H

/* /var/cache/vmlaunch as root, else $XDG_CACHE_HOME/vmlaunch or ~/.cache/vmlaunch; NULL when there is no home. */
char *cache_dir_path(void);

#endif
