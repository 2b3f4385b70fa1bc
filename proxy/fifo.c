/*
 * The outstanding-request FIFO of a server connection (see px.h): a ring
 * that starts inline and grows on the heap for long pipelines, up to
 * PX_FIFO_MAX entries. It must not refuse a pipeline a server would take in
 * one go: PostgreSQL answers extended-query messages without flushing until
 * Sync, so a proxy that stopped forwarding early could wait forever.
 */
#include <stdlib.h>
#include <string.h>

#include "px.h"

bool px_fifo_push(px_fifo_t *f, px_req_kind_t kind, const px_stmt_key_t *key)
{
    if (f->count == f->cap) {
        if (f->cap >= PX_FIFO_MAX)
            return false;
        uint32_t ncap = f->cap * 2;
        px_req_t *n = malloc(sizeof(*n) * ncap);
        if (!n)
            return false;
        for (uint32_t i = 0; i < f->count; i++)
            n[i] = f->items[(f->head + i) & (f->cap - 1)];
        if (f->items != f->inline_items)
            free(f->items);
        f->items = n;
        f->cap = ncap;
        f->head = 0;
    }
    px_req_t *r = &f->items[(f->head + f->count) & (f->cap - 1)];
    r->kind = (uint8_t)kind;
    r->has_key = key != NULL;
    r->after_exec = false;
    r->in_copy = false;
    if (key)
        r->key = *key;
    f->count++;
    return true;
}

void px_fifo_remove_at(px_fifo_t *f, uint32_t i)
{
    if (i == 0 || i >= f->count)
        return;
    for (uint32_t k = i; k + 1 < f->count; k++)
        *px_fifo_at(f, k) = *px_fifo_at(f, k + 1);
    f->count--;
}

void px_fifo_free(px_fifo_t *f)
{
    if (f->items != f->inline_items)
        free(f->items);
    px_fifo_init(f);
}
