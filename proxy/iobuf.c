/*
 * I/O buffers. Standard-size buffers (one socket read's worth) come from a
 * per-worker free list and go back to it as soon as they are drained, so an
 * idle connection holds no buffer at all. A single message the proxy must see
 * whole and that is larger than a standard buffer gets a malloc'd buffer of
 * exactly its size (capped by MAX_MESSAGE_SIZE upstream), freed once drained.
 */
#include <stdlib.h>
#include <string.h>

#include "px.h"

px_iobuf_t *px_iobuf_get(px_worker_t *w, uint32_t cap)
{
    px_iobuf_t *b;
    if (cap <= PX_IOBUF_SIZE && w->free_bufs) {
        b = w->free_bufs;
        w->free_bufs = b->next;
        w->n_free_bufs--;
    } else {
        if (cap < PX_IOBUF_SIZE)
            cap = PX_IOBUF_SIZE;
        b = malloc(sizeof(*b) + cap);
        if (!b)
            return NULL;
        b->cap = cap;
    }
    b->next = NULL;
    b->rpos = b->wpos = 0;
    PX_STAT_INC(w, iobufs_in_use);
    return b;
}

void px_iobuf_put(px_worker_t *w, px_iobuf_t *b)
{
    if (!b)
        return;
    PX_STAT_DEC(w, iobufs_in_use);
    if (b->cap != PX_IOBUF_SIZE || w->n_free_bufs >= 1024) {
        free(b);
        return;
    }
    b->next = w->free_bufs;
    w->free_bufs = b;
    w->n_free_bufs++;
}

void px_iobuf_compact(px_iobuf_t *b)
{
    if (b->rpos == 0)
        return;
    uint32_t n = b->wpos - b->rpos;
    if (n)
        memmove(b->data, b->data + b->rpos, n);
    b->rpos = 0;
    b->wpos = n;
}

bool px_iobuf_reserve(px_worker_t *w, px_iobuf_t **bp, uint32_t need)
{
    px_iobuf_t *b = *bp;
    if (b->cap - b->rpos >= need)
        return true;
    if (b->cap >= need) {
        px_iobuf_compact(b);
        return true;
    }
    px_iobuf_t *nb = px_iobuf_get(w, need);
    if (!nb)
        return false;
    uint32_t n = b->wpos - b->rpos;
    memcpy(nb->data, b->data + b->rpos, n);
    nb->wpos = n;
    px_iobuf_put(w, b);
    *bp = nb;
    return true;
}

void px_iobuf_trim_pool(px_worker_t *w, uint32_t keep)
{
    while (w->n_free_bufs > keep) {
        px_iobuf_t *b = w->free_bufs;
        w->free_bufs = b->next;
        w->n_free_bufs--;
        free(b);
    }
}
