/*
 * cascade.c - a deleted document's chats go (cascade.h).
 *
 * DESIGN. One entry, inside the follower's transaction with the cursor move: the tombstone
 * first (it takes the row every chat insert takes, so a chat being created now is committed
 * before and deleted here, or refused after), then the owner's chats of the document (messages
 * by their foreign key, turns in progress by chat id). A failure rolls it all back and the
 * follower retries the entry. A replica's cache of chats seen (cache.h) may still hold a deleted
 * chat: a turn in it is refused by its first statement, which needs the chat row.
 */
#include "cascade.h"
#include "cm/follow.h"
#include "cm/log.h"
#include "cm/util.h"
#include "store.h"

cm_err
chat_cascade_apply(void *arg, cm_pg *pg, int64_t seq, const char *document_id, const char *owner)
{
	int    n = 0;
	cm_err err;

	(void)arg;
	if (!cm_uuid_valid(document_id)) {
		cm_warn("CHAT-CASCADE-SKIP", "deletion %lld names no document id: '%.40s'",
		        (long long)seq, document_id);
		return CM_OK;
	}
	if ((err = cm_follow_tombstone(pg, document_id)) != CM_OK ||
	    (err = chat_store_delete_document(pg, document_id, owner, &n)) != CM_OK ||
	    (err = cm_follow_prune_tombstones(pg, CM_FOLLOW_TOMBSTONE_S)) != CM_OK)
		return err;
	if (n > 0)
		cm_info("CHAT-DOC-DELETED", "document %s (deletion %lld): %d chats deleted",
		        document_id, (long long)seq, n);
	return CM_OK;
}
