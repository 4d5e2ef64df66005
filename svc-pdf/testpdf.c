/*
 * testpdf.c - writing synthetic PDFs for tests.
 *
 * DESIGN: objects are appended in order with their byte offsets recorded, then the classic xref
 * table (20-byte entries) and the trailer. Object numbers are fixed for the shared objects
 * (1 catalog, 2 root pages, 3 font, 4 info, 5 encrypt, 6 image) and follow on for the tree
 * nodes and the pages (page object, then its content stream). Text is drawn with the standard
 * Helvetica font, one Tj per line, an extra line of leading between paragraphs.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testpdf.h"

#define OBJ_CATALOG 1
#define OBJ_PAGES 2
#define OBJ_FONT 3
#define OBJ_INFO 4
#define OBJ_ENCRYPT 5
#define OBJ_IMAGE 6
#define OBJ_FIRST 7

typedef struct writer {
	cm_buf *b;
	size_t  base; /* where the PDF starts in b */
	size_t *off;  /* offset of object i (0 = free) */
	int     nobj;
	cm_err  err;
} writer;

static void
put(writer *w, const char *s)
{
	if (w->err == CM_OK)
		w->err = cm_buf_appends(w->b, s);
}

static void putf(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(writer *w, const char *fmt, ...)
{
	va_list ap;

	if (w->err != CM_OK)
		return;
	va_start(ap, fmt);
	w->err = cm_buf_vprintf(w->b, fmt, ap);
	va_end(ap);
}

static void
obj_begin(writer *w, int n)
{
	if (n > 0 && n < w->nobj)
		w->off[n] = w->b->len - w->base;
	putf(w, "%d 0 obj\n", n);
}

/* A PDF literal string: ( ) \ escaped. */
static void
put_string(writer *w, const char *s, size_t n)
{
	put(w, "(");
	for (size_t i = 0; i < n && w->err == CM_OK; i++) {
		if (s[i] == '(' || s[i] == ')' || s[i] == '\\')
			w->err = cm_buf_append(w->b, "\\", 1);
		if (w->err == CM_OK)
			w->err = cm_buf_append(w->b, &s[i], 1);
	}
	put(w, ")");
}

static void
put_stream(writer *w, int n, const char *data, size_t len)
{
	obj_begin(w, n);
	putf(w, "<< /Length %zu >>\nstream\n", len);
	if (w->err == CM_OK)
		w->err = cm_buf_append(w->b, data, len);
	put(w, "\nendstream\nendobj\n");
}

/* The content stream of one text page into c. */
static cm_err
text_content(const char *text, cm_buf *c)
{
	writer      w = {c, 0, NULL, 0, CM_OK};
	const char *p = text, *nl;

	put(&w, "BT /F1 11 Tf 14 TL 72 760 Td\n");
	while (w.err == CM_OK) {
		nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (n == 0) {
			put(&w, "T*\n"); /* an empty line: paragraph gap */
		} else {
			put_string(&w, p, n);
			put(&w, " Tj T*\n");
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	put(&w, "ET\n");
	return w.err;
}

static void
info_entry(writer *w, const char *key, const char *v)
{
	if (v == NULL)
		return;
	putf(w, " /%s ", key);
	put_string(w, v, strlen(v));
}

cm_err
pdf_testpdf_build(const pdf_testpdf *o, cm_buf *out)
{
	writer w = {out, out->len, NULL, 0, CM_OK};
	int    npages = o->npages, depth = o->tree_depth, first_page, parent;
	bool   info =
	    o->title || o->author || o->subject || o->creator || o->producer || o->creation_date;
	cm_buf content;
	char   label[32];
	size_t xref;

	cm_buf_init(&content, 1u << 26);
	first_page = OBJ_FIRST + depth;
	w.nobj = first_page + 2 * npages;
	if (npages < 0 || depth < 0 || (w.off = calloc((size_t)w.nobj, sizeof(size_t))) == NULL) {
		w.err = CM_EINVAL;
		goto out;
	}
	put(&w, "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");

	obj_begin(&w, OBJ_CATALOG);
	putf(&w, "<< /Type /Catalog /Pages %d 0 R", OBJ_PAGES);
	if (o->array_depth > 0) {
		put(&w, " /Junk ");
		for (int i = 0; i < o->array_depth; i++)
			put(&w, "[");
		for (int i = 0; i < o->array_depth; i++)
			put(&w, "]");
	}
	put(&w, " >>\nendobj\n");

	/* Root pages: kids are the first tree node, or the pages themselves. */
	obj_begin(&w, OBJ_PAGES);
	put(&w, "<< /Type /Pages /Kids [");
	if (o->self_kid)
		putf(&w, " %d 0 R", OBJ_PAGES);
	if (depth > 0)
		putf(&w, " %d 0 R", OBJ_FIRST);
	else
		for (int i = 0; i < npages; i++)
			putf(&w, " %d 0 R", first_page + 2 * i);
	putf(&w, " ] /Count %lld >>\nendobj\n",
	     o->claimed_count > 0 ? o->claimed_count : (long long)npages);

	obj_begin(&w, OBJ_FONT);
	put(&w,
	    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>\n"
	    "endobj\n");
	obj_begin(&w, OBJ_INFO);
	put(&w, "<<");
	info_entry(&w, "Title", o->title);
	info_entry(&w, "Author", o->author);
	info_entry(&w, "Subject", o->subject);
	info_entry(&w, "Creator", o->creator);
	info_entry(&w, "Producer", o->producer);
	info_entry(&w, "CreationDate", o->creation_date);
	put(&w, " >>\nendobj\n");
	obj_begin(&w, OBJ_ENCRYPT);
	put(&w, "<< /Filter /Standard /V 1 /R 2 /P -4"
	        " /O <00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff>"
	        " /U <ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100> >>\n"
	        "endobj\n");
	obj_begin(&w, OBJ_IMAGE);
	put(&w, "<< /Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace /DeviceGray"
	        " /BitsPerComponent 8 /Length 64 >>\nstream\n");
	for (int i = 0; i < 64 && w.err == CM_OK; i++)
		w.err = cm_buf_append(out, (i / 8 + i) % 2 ? "\x20" : "\xe0", 1);
	put(&w, "\nendstream\nendobj\n");

	/* A chain of intermediate nodes, each with one kid; the last one holds the pages. */
	for (int d = 0; d < depth; d++) {
		obj_begin(&w, OBJ_FIRST + d);
		putf(&w, "<< /Type /Pages /Parent %d 0 R /Kids [",
		     d == 0 ? OBJ_PAGES : OBJ_FIRST + d - 1);
		if (d + 1 < depth)
			putf(&w, " %d 0 R", OBJ_FIRST + d + 1);
		else
			for (int i = 0; i < npages; i++)
				putf(&w, " %d 0 R", first_page + 2 * i);
		putf(&w, " ] /Count %d >>\nendobj\n", npages);
	}
	parent = depth > 0 ? OBJ_FIRST + depth - 1 : OBJ_PAGES;

	for (int i = 0; i < npages && w.err == CM_OK; i++) {
		int pg = first_page + 2 * i;
		obj_begin(&w, pg);
		putf(&w,
		     "<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
		     " /Resources << /Font << /F1 %d 0 R >> /XObject << /Im1 %d 0 R >> >> >>\n"
		     "endobj\n",
		     parent, pg + 1, OBJ_FONT, OBJ_IMAGE);
		cm_buf_reset(&content);
		if (o->image_only) {
			w.err = cm_buf_appends(&content, "q 200 0 0 200 100 400 cm /Im1 Do Q\n");
		} else if (!o->blank) {
			snprintf(label, sizeof(label), "Page %d", i + 1);
			w.err = text_content(o->pages != NULL ? o->pages[i] : label, &content);
		}
		if (w.err == CM_OK)
			put_stream(&w, pg + 1, content.data != NULL ? content.data : "",
			           content.len);
	}

	for (size_t pad = 0; pad < o->padding && w.err == CM_OK; pad += 100)
		putf(&w,
		     "%% padding line %012zx ..........................................."
		     "..................\n",
		     pad / 100);
	xref = out->len - w.base;
	putf(&w, "xref\n0 %d\n0000000000 65535 f \n", w.nobj);
	for (int i = 1; i < w.nobj; i++) {
		if (w.off[i] == 0)
			put(&w, "0000000000 65535 f \n");
		else
			putf(&w, "%010zu 00000 n \n", w.off[i]);
	}
	putf(&w, "trailer\n<< /Size %d /Root %d 0 R", w.nobj, OBJ_CATALOG);
	if (info)
		putf(&w, " /Info %d 0 R", OBJ_INFO);
	if (o->encrypted)
		putf(&w,
		     " /Encrypt %d 0 R /ID [<0123456789abcdef0123456789abcdef>"
		     " <0123456789abcdef0123456789abcdef>]",
		     OBJ_ENCRYPT);
	putf(&w, " >>\nstartxref\n%zu\n%%%%EOF\n", xref);
out:
	cm_buf_fini(&content);
	free(w.off);
	return w.err;
}
