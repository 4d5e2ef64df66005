/*
 * fuzz_pdf_extract.c - libFuzzer driver for svc-pdf's extraction: arbitrary bytes through
 * pdf_extract (mupdf under our allocator, watchdog and limits), then chunking of whatever text
 * came out. Small limits keep each input fast; any crash, leak or sanitizer report is a bug.
 * Seeds: test/fuzz/corpus/fuzz_pdf_extract/ (small PDFs made by svc-pdf/testpdf.c).
 * svc-pdf headers are included by path: tests see every service's directory, and names such as
 * config.h or server.h exist in several.
 */
#include <stdint.h>
#include <stdlib.h>

#include "../../svc-pdf/chunk.h"
#include "../../svc-pdf/extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static pdf_extractor *ex;
	static pdf_xctx      *xc;
	pdf_limits            lim = {50, 2000, (size_t)64 << 20, (size_t)4 << 20};
	pdf_text              t;
	pdf_chunks            c;
	char                  why[256];

	if (ex == NULL && (pdf_extractor_alloc(&ex) != CM_OK || pdf_xctx_alloc(ex, &xc) != CM_OK))
		abort();
	if (size > ((size_t)1 << 20))
		return 0;
	pdf_text_init(&t, lim.max_text);
	if (pdf_extract(xc, data, size, &lim, &t, why, sizeof(why)) == CM_OK) {
		if (t.npages < 1 || !t.has_text || why[0] != '\0')
			abort(); /* success means pages with text and no reason */
		if (pdf_chunk_pages(t.page, t.page_len, t.npages, 0, 0, &c) == CM_OK)
			pdf_chunks_fini(&c);
	} else if (why[0] == '\0') {
		abort(); /* every failure has a reason for the client */
	}
	pdf_text_fini(&t);
	return 0;
}
