/*
 * files.c - content-addressed PDF files on the data volume.
 *
 * DESIGN: write to "<dir>/.tmp-<sha>-<random>" (O_EXCL, 0640), fsync, rename over
 * "<dir>/<sha>.pdf", fsync the directory. Same bytes give the same name, so two replicas
 * writing the same file at once both succeed and the last rename wins harmlessly. A crash leaves
 * at most a ".tmp-" file, never a partial "<sha>.pdf".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cm/log.h"
#include "cm/util.h"
#include "files.h"

bool
pdf_sha256_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < PDF_SHA256_HEX; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	}
	return s[i] == '\0';
}

void
pdf_sha256_hex(const void *data, size_t len, char out[PDF_SHA256_HEX + 1])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, data, len);
	cm_hex(h, sizeof(h), out);
}

static bool
file_path(const char *dir, const char *sha, char *out, size_t outlen)
{
	int n;

	if (!pdf_sha256_valid(sha))
		return false;
	n = snprintf(out, outlen, "%s/%s.pdf", dir, sha);
	return n > 0 && (size_t)n < outlen;
}

cm_err
pdf_files_init(const char *dir)
{
	char        path[4096];
	struct stat st;
	size_t      n = cm_strlcpy(path, dir, sizeof(path));
	cm_err      err = CM_OK;

	if (n == 0 || n >= sizeof(path)) {
		err = CM_EINVAL;
		goto out;
	}
	/* mkdir -p */
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0750) != 0 && errno != EEXIST) {
			cm_error("PDF-DATA-DIR", "cannot create %s: %s", path, strerror(errno));
			err = CM_EUNAVAIL;
			goto out;
		}
		if (i < n)
			path[i] = '/';
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0) {
		cm_error("PDF-DATA-DIR", "%s is not a writable directory", dir);
		err = CM_EUNAVAIL;
	}
out:
	return err;
}

bool
pdf_files_exists(const char *dir, const char *sha, size_t size)
{
	char        path[4096];
	struct stat st;

	return file_path(dir, sha, path, sizeof(path)) && stat(path, &st) == 0 &&
	       S_ISREG(st.st_mode) && (size_t)st.st_size == size;
}

static bool
write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

cm_err
pdf_files_write(const char *dir, const char *sha, const void *data, size_t len)
{
	char          path[4096], tmp[4160], rnd[17];
	unsigned char r[8];
	int           fd = -1, dfd = -1, n;
	bool          created = false;
	cm_err        err = CM_EUNAVAIL;

	if (!file_path(dir, sha, path, sizeof(path))) {
		err = CM_EINVAL;
		goto out;
	}
	cm_random_bytes(r, sizeof(r));
	cm_hex(r, sizeof(r), rnd);
	n = snprintf(tmp, sizeof(tmp), "%s/.tmp-%s-%s", dir, sha, rnd);
	if (n <= 0 || (size_t)n >= sizeof(tmp)) {
		err = CM_EINVAL;
		goto out;
	}
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0)
		goto fail;
	created = true;
	if (!write_all(fd, data, len) || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	created = false;
	/* Make the rename itself durable. */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) != 0)
		goto fail;
	err = CM_OK;
	goto out;
fail:
	cm_error("PDF-FILE-WRITE", "cannot store %s.pdf in %s: %s", sha, dir, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (created)
		unlink(tmp);
	return err;
}

cm_err
pdf_files_remove(const char *dir, const char *sha)
{
	char   path[4096];
	cm_err err = CM_OK;

	if (!file_path(dir, sha, path, sizeof(path)))
		err = CM_EINVAL;
	else if (unlink(path) != 0 && errno != ENOENT) {
		cm_warn("PDF-FILE-UNLINK", "cannot remove %s: %s", path, strerror(errno));
		err = CM_EUNAVAIL;
	}
	return err;
}
