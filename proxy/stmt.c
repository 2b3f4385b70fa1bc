/*
 * Statement maps and sets for prepared statements under transaction pooling
 * (see stmt.h). Both structures are bounded: a client may keep at most
 * its max statements (PX_STMT_MAP_MAX by default), a server connection PX_STMT_SET_MAX, beyond
 * which the oldest server-side statement is evicted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "stmt.h"

px_stmt_key_t px_stmt_key(const void *rest, size_t len)
{
    XXH128_hash_t h = XXH3_128bits(rest, len);
    px_stmt_key_t k = {h.low64, h.high64};
    if (k.lo == 0 && k.hi <= 1)
        k.lo = 1; /* keep the set's empty/deleted markers free */
    return k;
}

/* "fx_" and 32 lower-case hex digits; on every Bind of a named statement, so
 * no printf */
void px_stmt_name(px_stmt_key_t key, char out[PX_STMT_NAME_LEN])
{
    static const char hex[] = "0123456789abcdef";
    _Static_assert(PX_STMT_NAME_LEN >= 3 + 32 + 1, "room for the name");
    out[0] = 'f';
    out[1] = 'x';
    out[2] = '_';
    for (int i = 0; i < 16; i++) {
        out[3 + i] = hex[(key.hi >> (60 - 4 * i)) & 0xf];
        out[19 + i] = hex[(key.lo >> (60 - 4 * i)) & 0xf];
    }
    out[35] = 0;
}

uint32_t px_stmt_name_hash(const char *name, size_t len)
{
    return (uint32_t)XXH3_64bits(name, len);
}

px_stmt_t *px_stmt_new(const char *name, size_t name_len, const void *rest, size_t rest_len,
                       px_stmt_key_t key)
{
    if (name_len > UINT16_MAX || rest_len > UINT32_MAX)
        return NULL;
    px_stmt_t *e = malloc(sizeof(*e) + rest_len + name_len + 1);
    if (!e)
        return NULL;
    e->next = NULL;
    e->key = key;
    e->confirmed = false;
    e->shape = 0;
    e->rest_len = (uint32_t)rest_len;
    e->name_len = (uint16_t)name_len;
    memcpy(e->rest, rest, rest_len);
    e->name = (char *)e->rest + rest_len;
    memcpy(e->name, name, name_len);
    e->name[name_len] = 0;
    return e;
}

bool px_stmt_map_put(px_stmt_map_t *m, const char *name, size_t name_len, const void *rest,
                     size_t rest_len, px_stmt_key_t key)
{
    if (!m->buckets) {
        m->n_buckets = 64;
        m->buckets = calloc(m->n_buckets, sizeof(*m->buckets));
        if (!m->buckets)
            return false;
    }
    bool replacing = px_stmt_map_get(m, name, name_len) != NULL;
    if (!replacing && m->count >= (m->max ? m->max : PX_STMT_MAP_MAX))
        return false;
    if (!replacing && m->count >= m->n_buckets * 2) {
        uint32_t nb = m->n_buckets * 4;
        px_stmt_t **nbk = calloc(nb, sizeof(*nbk));
        if (nbk) {
            for (uint32_t i = 0; i < m->n_buckets; i++) {
                px_stmt_t *e = m->buckets[i];
                while (e) {
                    px_stmt_t *next = e->next;
                    uint32_t b = px_stmt_name_hash(e->name, e->name_len) & (nb - 1);
                    e->next = nbk[b];
                    nbk[b] = e;
                    e = next;
                }
            }
            free(m->buckets);
            m->buckets = nbk;
            m->n_buckets = nb;
        }
    }
    px_stmt_t *e = px_stmt_new(name, name_len, rest, rest_len, key);
    if (!e)
        return false;
    if (replacing)
        px_stmt_map_del(m, name, name_len);
    uint32_t b = px_stmt_name_hash(name, name_len) & (m->n_buckets - 1);
    e->next = m->buckets[b];
    m->buckets[b] = e;
    m->count++;
    return true;
}

const px_stmt_t *px_stmt_map_get(const px_stmt_map_t *m, const char *name, size_t name_len)
{
    if (!m->buckets)
        return NULL;
    uint32_t b = px_stmt_name_hash(name, name_len) & (m->n_buckets - 1);
    for (px_stmt_t *e = m->buckets[b]; e; e = e->next)
        if (e->name_len == name_len && memcmp(e->name, name, name_len) == 0)
            return e;
    return NULL;
}

bool px_stmt_map_del(px_stmt_map_t *m, const char *name, size_t name_len)
{
    if (!m->buckets)
        return false;
    uint32_t b = px_stmt_name_hash(name, name_len) & (m->n_buckets - 1);
    for (px_stmt_t **pp = &m->buckets[b]; *pp; pp = &(*pp)->next) {
        px_stmt_t *e = *pp;
        if (e->name_len == name_len && memcmp(e->name, name, name_len) == 0) {
            *pp = e->next;
            free(e);
            m->count--;
            return true;
        }
    }
    return false;
}

void px_stmt_map_clear(px_stmt_map_t *m)
{
    if (m->buckets) {
        for (uint32_t i = 0; i < m->n_buckets; i++) {
            px_stmt_t *e = m->buckets[i];
            while (e) {
                px_stmt_t *next = e->next;
                free(e);
                e = next;
            }
        }
        free(m->buckets);
    }
    free(m->dropped);
    memset(m, 0, sizeof(*m));
}

void px_stmt_map_confirm(px_stmt_map_t *m, px_stmt_key_t key)
{
    for (uint32_t i = 0; m->buckets && i < m->n_buckets; i++)
        for (px_stmt_t *e = m->buckets[i]; e; e = e->next)
            if (!e->confirmed && px_stmt_key_eq(e->key, key))
                e->confirmed = true;
}

const px_stmt_t *px_stmt_map_by_key(const px_stmt_map_t *m, px_stmt_key_t key)
{
    for (uint32_t i = 0; m->buckets && i < m->n_buckets; i++)
        for (const px_stmt_t *e = m->buckets[i]; e; e = e->next)
            if (px_stmt_key_eq(e->key, key))
                return e;
    return m->dropped && px_stmt_key_eq(m->dropped->key, key) ? m->dropped : NULL;
}

bool px_stmt_name_parse(const char *p, size_t n, px_stmt_key_t *key)
{
    if (n < PX_STMT_NAME_LEN - 1 || p[0] != 'f' || p[1] != 'x' || p[2] != '_')
        return false;
    uint64_t v[2] = {0, 0};
    for (int i = 0; i < 32; i++) {
        char ch = p[3 + i];
        unsigned d;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else
            return false;
        v[i / 16] = (v[i / 16] << 4) | d;
    }
    key->hi = v[0];
    key->lo = v[1];
    return true;
}

void px_stmt_map_drop_unconfirmed(px_stmt_map_t *m, px_stmt_key_t key)
{
    for (uint32_t i = 0; m->buckets && i < m->n_buckets; i++) {
        for (px_stmt_t **pp = &m->buckets[i]; *pp;) {
            px_stmt_t *e = *pp;
            if (!e->confirmed && px_stmt_key_eq(e->key, key)) {
                *pp = e->next;
                free(m->dropped);
                m->dropped = e;
                e->next = NULL;
                m->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

/* ---- server sets ------------------------------------------------------------ */

static bool slot_empty(px_stmt_key_t k)
{
    return k.lo == 0 && k.hi == 0;
}
static bool slot_deleted(px_stmt_key_t k)
{
    return k.lo == 0 && k.hi == 1;
}

void px_stmt_map_set_shape(px_stmt_map_t *m, uint32_t name_hash, px_stmt_key_t key, uint64_t shape)
{
    if (!m->buckets)
        return;
    /* the name may have been closed or prepared anew meanwhile: only the
     * statement still filed under it with the same content */
    for (px_stmt_t *e = m->buckets[name_hash & (m->n_buckets - 1)]; e; e = e->next)
        if (px_stmt_key_eq(e->key, key) && px_stmt_name_hash(e->name, e->name_len) == name_hash)
            e->shape = shape;
}

uint64_t px_stmt_shape(const uint8_t *body, size_t len)
{
    if (!body)
        return 1; /* NoData */
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    size_t i = 2;
    if (len >= 2)
        XXH3_64bits_update(&st, body, 2); /* the number of fields */
    while (i < len) {
        const uint8_t *z = memchr(body + i, 0, len - i);
        /* name and its NUL; then table OID (4), column (2), type OID (4),
         * length (2), modifier (4), format (2) */
        if (!z || (size_t)(z - body) + 1 + 18 > len) {
            XXH3_64bits_update(&st, body + i, len - i); /* malformed: all of it */
            break;
        }
        size_t name_end = (size_t)(z - body) + 1;
        XXH3_64bits_update(&st, body + i, name_end - i);
        XXH3_64bits_update(&st, body + name_end + 6, 10);
        i = name_end + 18;
    }
    uint64_t h = XXH3_64bits_digest(&st);
    return h > 1 ? h : h + 2;
}

px_stmt_set_t *px_stmt_set_new(void)
{
    px_stmt_set_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->n_slots = 2 * PX_STMT_SET_MAX;
    s->slots = calloc(s->n_slots, sizeof(*s->slots));
    s->shapes = calloc(s->n_slots, sizeof(*s->shapes));
    s->order = calloc(PX_STMT_SET_MAX, sizeof(*s->order));
    if (!s->slots || !s->shapes || !s->order) {
        px_stmt_set_free(s);
        return NULL;
    }
    return s;
}

void px_stmt_set_free(px_stmt_set_t *s)
{
    if (!s)
        return;
    free(s->slots);
    free(s->shapes);
    free(s->order);
    free(s);
}

static int64_t find_slot(const px_stmt_set_t *s, px_stmt_key_t key)
{
    uint32_t mask = s->n_slots - 1;
    for (uint32_t i = (uint32_t)key.lo & mask, n = 0; n < s->n_slots; i = (i + 1) & mask, n++) {
        if (slot_empty(s->slots[i]))
            return -1;
        if (px_stmt_key_eq(s->slots[i], key))
            return i;
    }
    return -1;
}

bool px_stmt_set_has(const px_stmt_set_t *s, px_stmt_key_t key)
{
    return s && find_slot(s, key) >= 0;
}

void px_stmt_set_del(px_stmt_set_t *s, px_stmt_key_t key)
{
    if (!s)
        return;
    int64_t i = find_slot(s, key);
    if (i < 0)
        return;
    s->slots[i].lo = 0;
    s->slots[i].hi = 1;
    s->count--;
    /* its place in the eviction ring is skipped lazily */
}

static void rehash(px_stmt_set_t *s)
{
    /* drop tombstones: reinsert the live keys */
    px_stmt_key_t live[PX_STMT_SET_MAX];
    uint64_t live_shape[PX_STMT_SET_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n_slots && n < PX_STMT_SET_MAX; i++)
        if (!slot_empty(s->slots[i]) && !slot_deleted(s->slots[i])) {
            live_shape[n] = s->shapes[i];
            live[n++] = s->slots[i];
        }
    memset(s->slots, 0, s->n_slots * sizeof(*s->slots));
    memset(s->shapes, 0, s->n_slots * sizeof(*s->shapes));
    uint32_t mask = s->n_slots - 1;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (uint32_t)live[k].lo & mask;
        while (!slot_empty(s->slots[i]))
            i = (i + 1) & mask;
        s->slots[i] = live[k];
        s->shapes[i] = live_shape[k];
    }
    s->count = n;
}

void px_stmt_set_add(px_stmt_set_t *s, px_stmt_key_t key, px_stmt_key_t *evicted, bool *had_evicted)
{
    *had_evicted = false;
    if (px_stmt_set_has(s, key))
        return;
    /* the ring may hold keys deleted since; skip those when evicting */
    while (s->order_count == PX_STMT_SET_MAX) {
        px_stmt_key_t old = s->order[s->order_head];
        s->order_head = (s->order_head + 1) % PX_STMT_SET_MAX;
        s->order_count--;
        if (find_slot(s, old) >= 0) {
            px_stmt_set_del(s, old);
            *evicted = old;
            *had_evicted = true;
            break;
        }
    }
    uint32_t tail = (s->order_head + s->order_count) % PX_STMT_SET_MAX;
    s->order[tail] = key;
    s->order_count++;
    uint32_t mask = s->n_slots - 1;
    uint32_t i = (uint32_t)key.lo & mask;
    uint32_t probes = 0;
    while (!slot_empty(s->slots[i]) && !slot_deleted(s->slots[i])) {
        i = (i + 1) & mask;
        if (++probes >= s->n_slots) {
            rehash(s);
            i = (uint32_t)key.lo & mask;
            probes = 0;
        }
    }
    s->slots[i] = key;
    s->shapes[i] = 0;
    s->count++;
    if (probes > 64)
        rehash(s);
}

uint64_t px_stmt_set_shape(const px_stmt_set_t *s, px_stmt_key_t key)
{
    int64_t i = s ? find_slot(s, key) : -1;
    return i >= 0 ? s->shapes[i] : 0;
}

void px_stmt_set_note_shape(px_stmt_set_t *s, px_stmt_key_t key, uint64_t shape)
{
    int64_t i = s ? find_slot(s, key) : -1;
    if (i >= 0)
        s->shapes[i] = shape;
}

void px_stmt_set_clear(px_stmt_set_t *s)
{
    if (!s)
        return;
    memset(s->slots, 0, s->n_slots * sizeof(*s->slots));
    memset(s->shapes, 0, s->n_slots * sizeof(*s->shapes));
    s->count = 0;
    s->order_head = 0;
    s->order_count = 0;
}
