/*
 * map.c: ex_map, results in input order over any backend.
 *
 * Inputs are taken from a source in order, grouped into chunks (chunksize
 * inputs, one task each: see chunk.c), and at most `window` chunks are
 * between submission and retirement at any time; that is how buffersize
 * bounds memory: a chunk is retired (its inputs handed back with put(), its
 * future released) only when the caller has consumed its last result, and
 * only then is the next chunk taken from the source and submitted.
 * Chunk k lives in slot k % window.
 */
#include "ex_internal.h"

#include <stdlib.h>

typedef struct map_slot {
    ex_future *f;       /* NULL if submission failed */
    int submit_error;   /* why f is NULL */
    size_t first, count;
    ex_buf packed;      /* chunksize > 1: the packed input */
    bool returned;      /* inputs already handed back with put() */
} map_slot;

typedef struct array_source {
    const void *const *inputs;
    const size_t *lens;
} array_source;

struct ex_map {
    ex_executor *ex;
    ex_task_fn fn;
    ex_map_source src;
    array_source array;
    size_t n, chunk, nchunks, window;
    map_slot *slots;
    const void **ins;   /* window * chunk inputs, by slot */
    size_t *lens;
    size_t submitted;   /* chunks taken from the source */
    size_t retired;     /* chunks fully consumed and released */
    size_t consumed;    /* results returned from chunk `retired` */
    bool have_cursor;
    ex_chunk_cursor cursor;
};

static void put_inputs(ex_map *m, map_slot *s, size_t got)
{
    size_t base = (size_t)(s - m->slots) * m->chunk;
    if (m->src.put)
        for (size_t i = 0; i < got; i++)
            m->src.put(m->src.arg, s->first + i, m->ins[base + i], m->lens[base + i]);
}

/* Takes the next chunk from the source and submits it.  Failures are kept
 * in the slot and reported per input by ex_map_next, so no input is lost. */
static void submit_chunk(ex_map *m)
{
    size_t k = m->submitted++;
    map_slot *s = &m->slots[k % m->window];
    size_t base = (k % m->window) * m->chunk;
    s->f = NULL;
    s->submit_error = 0;
    s->returned = false;
    s->first = k * m->chunk;
    s->count = m->n - s->first < m->chunk ? m->n - s->first : m->chunk;
    for (size_t i = 0; i < s->count; i++) {
        m->ins[base + i] = NULL;
        m->lens[base + i] = 0;
        int rc = m->src.get(m->src.arg, s->first + i, &m->ins[base + i], &m->lens[base + i]);
        if (rc) {
            /* Every input of the chunk reports the source's error. */
            put_inputs(m, s, i);
            s->returned = true;
            s->submit_error = rc < 0 ? rc : EX_EINVAL;
            return;
        }
    }
    int rc;
    if (m->chunk == 1) {
        rc = ex_submit(m->ex, m->fn, m->ins[base], m->lens[base], &s->f);
    } else {
        rc = ex__chunk_pack(&s->packed, m->fn, &m->ins[base], &m->lens[base], s->count);
        if (rc == 0)
            rc = ex_submit(m->ex, ex__chunk_task, s->packed.data, s->packed.len, &s->f);
    }
    if (rc) {
        s->f = NULL;
        s->submit_error = rc;
    }
}

static void retire(ex_map *m, map_slot *s)
{
    if (s->f) {
        ex_future_cancel(s->f);
        ex_future_wait(s->f, EX_FOREVER);
        ex_future_release(s->f);
        s->f = NULL;
    }
    if (!s->returned)
        put_inputs(m, s, s->count);
    s->returned = true;
    s->packed.len = 0;
}

static int array_get(void *arg, size_t i, const void **in, size_t *len)
{
    array_source *a = arg;
    *in = a->inputs[i];
    *len = a->lens ? a->lens[i] : 0;
    return 0;
}

int ex_map_create(ex_executor *ex, ex_task_fn fn, const ex_map_source *src,
                  size_t n, size_t chunksize, size_t buffersize, ex_map **out)
{
    if (!ex || !fn || !src || !src->get || !out)
        return EX_EINVAL;
    *out = NULL;
    char name[EX_TASK_NAME_MAX + 1];
    if (ex->cfg.kind == EX_MPI && !ex__task_name(fn, name))
        return EX_EINVAL; /* only named tasks reach an MPI worker */
    ex_map *m = calloc(1, sizeof *m);
    if (!m)
        return EX_ENOMEM;
    m->ex = ex;
    m->fn = fn;
    m->src = *src;
    m->n = n;
    m->chunk = chunksize ? chunksize : 1;
    m->nchunks = (n + m->chunk - 1) / m->chunk;
    m->window = buffersize ? (buffersize + m->chunk - 1) / m->chunk : m->nchunks;
    if (m->window > m->nchunks)
        m->window = m->nchunks;
    if (m->window == 0)
        m->window = 1;
    m->slots = calloc(m->window, sizeof *m->slots);
    m->ins = calloc(m->window * m->chunk, sizeof *m->ins);
    m->lens = calloc(m->window * m->chunk, sizeof *m->lens);
    if (!m->slots || !m->ins || !m->lens) {
        free(m->slots);
        free(m->ins);
        free(m->lens);
        free(m);
        return EX_ENOMEM;
    }
    while (m->submitted < m->nchunks && m->submitted < m->window)
        submit_chunk(m);
    *out = m;
    return EX_OK;
}

int ex_map_create_array(ex_executor *ex, ex_task_fn fn,
                        const void *const *inputs, const size_t *lens,
                        size_t n, size_t chunksize, size_t buffersize,
                        ex_map **out)
{
    if (!inputs && n)
        return EX_EINVAL;
    /* The source struct must outlive the call: it lives inside the map, so
     * create with a placeholder arg and point it there before submitting. */
    ex_map_source src = {.get = array_get, .put = NULL, .arg = NULL};
    array_source a = {.inputs = inputs, .lens = lens};
    src.arg = &a;
    int rc = ex_map_create(ex, fn, &src, n, chunksize, buffersize, out);
    if (rc == 0) {
        (*out)->array = a;
        (*out)->src.arg = &(*out)->array;
    }
    return rc;
}

/* The slot of chunk m->retired.  Once its last result was returned, the
 * chunk is retired and the next one submitted first; NULL when every
 * chunk is done. */
static map_slot *current_slot(ex_map *m)
{
    map_slot *s = &m->slots[m->retired % m->window];
    if (m->consumed < s->count)
        return s;
    retire(m, s);
    m->retired++;
    m->consumed = 0;
    m->have_cursor = false;
    if (m->submitted < m->nchunks)
        submit_chunk(m);
    if (m->retired == m->nchunks)
        return NULL;
    return &m->slots[m->retired % m->window];
}

/* The next item of a finished chunk of several inputs: its status (0,
 * EX_ETASK, or EX_EINVAL for a malformed chunk output), code and output. */
static int next_packed(ex_map *m, map_slot *s, int *code, const void **o,
                       size_t *l)
{
    if (!m->have_cursor) {
        if (ex__chunk_out_begin(&m->cursor, s->f->out_data, s->f->out_len,
                                (uint32_t)s->count))
            m->cursor.remaining = 0;
        m->have_cursor = true;
    }
    if (ex__chunk_out_next(&m->cursor, code, o, l) != 0) {
        *o = NULL;
        *l = 0;
        *code = 0;
        return EX_EINVAL;
    }
    return *code ? EX_ETASK : 0;
}

/* The next result of slot s, waiting up to timeout_ns: its status, task
 * code and output.  0, or the wait's error (EX_ETIMEDOUT). */
static int next_result(ex_map *m, map_slot *s, int64_t timeout_ns, int *st,
                       int *code, const void **o, size_t *l)
{
    *o = NULL;
    *l = 0;
    *code = 0;
    if (!s->f) {
        *st = s->submit_error;
        return 0;
    }
    int rc = ex_future_wait(s->f, timeout_ns);
    if (rc)
        return rc;
    if (m->chunk == 1) {
        *st = ex_future_result(s->f, o, l, 0);
        *code = ex_future_task_code(s->f);
    } else if (ex_future_state(s->f) != EX_DONE) {
        *st = ex_future_error(s->f);
        *code = ex_future_task_code(s->f);
    } else {
        *st = next_packed(m, s, code, o, l);
    }
    return 0;
}

int ex_map_next(ex_map *m, size_t *index, int *status, int *task_code,
                const void **out, size_t *len, int64_t timeout_ns)
{
    if (!m || !index || !status)
        return EX_EINVAL;
    if (m->retired == m->nchunks)
        return 1;
    map_slot *s = current_slot(m);
    if (!s)
        return 1;
    const void *o;
    size_t l;
    int st, code;
    int rc = next_result(m, s, timeout_ns, &st, &code, &o, &l);
    if (rc)
        return rc;
    *index = s->first + m->consumed++;
    *status = st;
    if (task_code)
        *task_code = st == EX_ETASK ? code : 0;
    if (out)
        *out = o;
    if (len)
        *len = l;
    return 0;
}

void ex_map_destroy(ex_map *m)
{
    if (!m)
        return;
    /* Cancel what has not started first, so waiting is short. */
    for (size_t k = m->retired; k < m->submitted; k++)
        if (m->slots[k % m->window].f)
            ex_future_cancel(m->slots[k % m->window].f);
    for (size_t k = m->retired; k < m->submitted; k++)
        retire(m, &m->slots[k % m->window]);
    for (size_t i = 0; i < m->window; i++)
        ex_buf_free(&m->slots[i].packed);
    free(m->slots);
    free(m->ins);
    free(m->lens);
    free(m);
}
