/*
 * spool.c - upload bodies in pieces on the shared data volume (see spool.h).
 *
 * DESIGN: pwrite at the piece's offset, so the order pieces arrive in and a repeated piece do not
 * matter; no fsync (a spool lives seconds; a crash loses an upload the client sees fail). The
 * read checks the size first: the edge sends the pieces one after the other, each answered
 * before the next, so a spool shorter or longer than the body's announced size means a piece was
 * lost or came from elsewhere, and the upload fails rather than extracting a hole.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cm/log.h"
#include "spool.h"

#define OWNER_MAX 64

static bool
valid_owner(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		char c = s[n];
		if (n >= OWNER_MAX || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		                        (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return n > 0;
}

static bool
valid_id(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if (n >= PDF_SPOOL_ID_HEX ||
		    !((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
			return false;
	}
	return n == PDF_SPOOL_ID_HEX;
}

static bool
spool_path(const char *dir, const char *owner, const char *id, char *out, size_t outlen)
{
	int n;

	if (!valid_owner(owner) || !valid_id(id))
		return false;
	n = snprintf(out, outlen, "%s/spool/%s-%s", dir, owner, id);
	return n > 0 && (size_t)n < outlen;
}

cm_err
pdf_spool_init(const char *dir)
{
	char path[4096];
	int  n = snprintf(path, sizeof(path), "%s/spool", dir);

	if (n <= 0 || (size_t)n >= sizeof(path))
		return CM_EINVAL;
	if (mkdir(path, 0750) != 0 && errno != EEXIST) {
		cm_error("PDF-SPOOL-DIR", "cannot create %s: %s", path, strerror(errno));
		return CM_EUNAVAIL;
	}
	return CM_OK;
}

cm_err
pdf_spool_write(const char *dir, const char *owner, const char *id, uint64_t offset,
                const void *data, size_t len, int64_t max_size)
{
	char           path[4096];
	const uint8_t *p = data;
	int            fd;
	cm_err         err = CM_OK;

	if (!spool_path(dir, owner, id, path, sizeof(path)))
		return CM_EINVAL;
	if (max_size < 0 || offset > (uint64_t)max_size || len > (uint64_t)max_size - offset)
		return CM_ETOOBIG;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640)) < 0) {
		cm_warn("PDF-SPOOL-OPEN", "%s: %s", path, strerror(errno));
		return CM_EUNAVAIL;
	}
	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, (off_t)offset);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			cm_warn("PDF-SPOOL-WRITE", "%s: %s", path, strerror(errno));
			err = CM_EUNAVAIL;
			break;
		}
		p += w;
		len -= (size_t)w;
		offset += (uint64_t)w;
	}
	close(fd);
	return err;
}

cm_err
pdf_spool_read(const char *dir, const char *owner, const char *id, void *buf, size_t len)
{
	char        path[4096];
	uint8_t    *p = buf;
	struct stat st;
	off_t       at = 0;
	int         fd;
	cm_err      err = CM_OK;

	if (!spool_path(dir, owner, id, path, sizeof(path)))
		return CM_EINVAL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? CM_ENOTFOUND : CM_EUNAVAIL;
	if (fstat(fd, &st) != 0) {
		err = CM_EUNAVAIL;
		goto out;
	}
	if (st.st_size < 0 || (uint64_t)st.st_size != (uint64_t)len) {
		err = CM_EINVAL;
		goto out;
	}
	while ((size_t)at < len) {
		ssize_t r = pread(fd, p + at, len - (size_t)at, at);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r == 0 ? CM_EINVAL : CM_EUNAVAIL;
			goto out;
		}
		at += r;
	}
out:
	close(fd);
	return err;
}

bool
pdf_spool_exists(const char *dir, const char *owner, const char *id)
{
	char        path[4096];
	struct stat st;

	return spool_path(dir, owner, id, path, sizeof(path)) && stat(path, &st) == 0;
}

int
pdf_spool_count(const char *dir, const char *owner)
{
	char           path[4096];
	DIR           *d;
	struct dirent *de;
	size_t         n = strlen(owner);
	int            count = 0;

	if (!valid_owner(owner) ||
	    snprintf(path, sizeof(path), "%s/spool", dir) >= (int)sizeof(path) ||
	    (d = opendir(path)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		count += strncmp(de->d_name, owner, n) == 0 && de->d_name[n] == '-' &&
		         valid_id(de->d_name + n + 1);
	closedir(d);
	return count;
}

bool
pdf_spool_room(const char *dir, int64_t min_free_mb)
{
	struct statvfs vfs;

	if (min_free_mb <= 0 || statvfs(dir, &vfs) != 0)
		return true;
	return (uint64_t)vfs.f_bavail * vfs.f_frsize > (uint64_t)min_free_mb << 20;
}

void
pdf_spool_remove(const char *dir, const char *owner, const char *id)
{
	char path[4096];

	if (spool_path(dir, owner, id, path, sizeof(path)) && unlink(path) != 0 && errno != ENOENT)
		cm_warn("PDF-SPOOL-UNLINK", "%s: %s", path, strerror(errno));
}

int
pdf_spool_sweep(const char *dir, int idle_s)
{
	char           path[4096];
	DIR           *d;
	struct dirent *de;
	struct stat    st;
	time_t         now = time(NULL);
	int            n = 0, fd;

	if (snprintf(path, sizeof(path), "%s/spool", dir) >= (int)sizeof(path) ||
	    (d = opendir(path)) == NULL)
		return 0;
	fd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode) || now - st.st_mtime < idle_s)
			continue;
		if (unlinkat(fd, de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	if (n > 0)
		cm_info("PDF-SPOOL-SWEEP", "%d abandoned upload spool(s) removed", n);
	return n;
}
