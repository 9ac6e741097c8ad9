/* spool_vfs: a pass-through SQLite VFS that counts file syncs.
 *
 * Group commit is the spool's central performance promise ("many readings
 * per fsync"), so the figure is measured where it happens: every xSync
 * SQLite issues goes through here and is counted before it is forwarded.
 * Everything else is forwarded unchanged to the default VFS ("unix"). */
#include <sqlite3.h>
#include <string.h>

#include "iotgw/spool.h"

const char spool_vfs_name[] = "iotgw-counting";

struct counted_file {
	sqlite3_file base; /* must be first: SQLite sees this */
	sqlite3_file *real; /* the default VFS's file, right after this struct */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs counting_vfs;
/* Atomic: the checkpoints' syncs come from the flush thread (spool_sync.c). */
static uint64_t sync_count;

static sqlite3_file *real_of(sqlite3_file *f)
{
	return ((struct counted_file *)(void *)f)->real;
}

static int f_close(sqlite3_file *f)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods ? r->pMethods->xClose(r) : SQLITE_OK;
}

static int f_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xRead(r, p, n, off);
}

static int f_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xWrite(r, p, n, off);
}

static int f_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xTruncate(r, size);
}

static int f_sync(sqlite3_file *f, int flags)
{
	sqlite3_file *r = real_of(f);
	__atomic_fetch_add(&sync_count, 1, __ATOMIC_RELAXED);
	return r->pMethods->xSync(r, flags);
}

static int f_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xFileSize(r, size);
}

static int f_lock(sqlite3_file *f, int level)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xLock(r, level);
}

static int f_unlock(sqlite3_file *f, int level)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xUnlock(r, level);
}

static int f_check_reserved(sqlite3_file *f, int *out)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xCheckReservedLock(r, out);
}

static int f_file_control(sqlite3_file *f, int op, void *arg)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xFileControl(r, op, arg);
}

static int f_sector_size(sqlite3_file *f)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xSectorSize(r);
}

static int f_device_characteristics(sqlite3_file *f)
{
	sqlite3_file *r = real_of(f);
	return r->pMethods->xDeviceCharacteristics(r);
}

static int f_shm_map(sqlite3_file *f, int region, int size, int extend, void volatile **pp)
{
	sqlite3_file *r = real_of(f);
	if (r->pMethods->iVersion < 2)
		return SQLITE_IOERR;
	return r->pMethods->xShmMap(r, region, size, extend, pp);
}

static int f_shm_lock(sqlite3_file *f, int offset, int n, int flags)
{
	sqlite3_file *r = real_of(f);
	if (r->pMethods->iVersion < 2)
		return SQLITE_IOERR;
	return r->pMethods->xShmLock(r, offset, n, flags);
}

static void f_shm_barrier(sqlite3_file *f)
{
	sqlite3_file *r = real_of(f);
	if (r->pMethods->iVersion >= 2)
		r->pMethods->xShmBarrier(r);
}

static int f_shm_unmap(sqlite3_file *f, int delete_flag)
{
	sqlite3_file *r = real_of(f);
	if (r->pMethods->iVersion < 2)
		return SQLITE_OK;
	return r->pMethods->xShmUnmap(r, delete_flag);
}

static int f_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	sqlite3_file *r = real_of(f);
	if (r->pMethods->iVersion < 3) {
		*pp = NULL;
		return SQLITE_OK;
	}
	return r->pMethods->xFetch(r, off, n, pp);
}

static int f_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	sqlite3_file *r = real_of(f);
	if (r->pMethods->iVersion < 3)
		return SQLITE_OK;
	return r->pMethods->xUnfetch(r, off, p);
}

static const sqlite3_io_methods counted_methods = {
	.iVersion = 3,
	.xClose = f_close,
	.xRead = f_read,
	.xWrite = f_write,
	.xTruncate = f_truncate,
	.xSync = f_sync,
	.xFileSize = f_file_size,
	.xLock = f_lock,
	.xUnlock = f_unlock,
	.xCheckReservedLock = f_check_reserved,
	.xFileControl = f_file_control,
	.xSectorSize = f_sector_size,
	.xDeviceCharacteristics = f_device_characteristics,
	.xShmMap = f_shm_map,
	.xShmLock = f_shm_lock,
	.xShmBarrier = f_shm_barrier,
	.xShmUnmap = f_shm_unmap,
	.xFetch = f_fetch,
	.xUnfetch = f_unfetch,
};

static int v_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	(void)vfs;
	struct counted_file *cf = (struct counted_file *)(void *)f;
	cf->real = (sqlite3_file *)(void *)(cf + 1);
	cf->real->pMethods = NULL;
	int rc = real_vfs->xOpen(real_vfs, name, cf->real, flags, out_flags);
	/* SQLite calls xClose whenever pMethods is set, even after a failed
	 * open, so ours is set exactly when the real file needs closing. */
	cf->base.pMethods = cf->real->pMethods ? &counted_methods : NULL;
	return rc;
}

int spool_vfs_register(void)
{
	if (real_vfs)
		return 0;
	/* Before SQLite initialises (sqlite3_vfs_find does): no global memory
	 * statistics, which would take a mutex on every allocation. */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite3_vfs *def = sqlite3_vfs_find(NULL);
	if (!def)
		return -1;
	/* Every other method is the default VFS's own, called with our struct,
	 * which carries the same pAppData. */
	memcpy(&counting_vfs, def, sizeof counting_vfs);
	counting_vfs.pNext = NULL;
	counting_vfs.zName = spool_vfs_name;
	counting_vfs.szOsFile = (int)sizeof(struct counted_file) + def->szOsFile;
	counting_vfs.xOpen = v_open;
	real_vfs = def;
	if (sqlite3_vfs_register(&counting_vfs, 0) != SQLITE_OK) {
		real_vfs = NULL;
		return -1;
	}
	return 0;
}

uint64_t spool_vfs_syncs(void)
{
	return __atomic_load_n(&sync_count, __ATOMIC_RELAXED);
}
