/*
 * gust_internal.h: what the helper's sources share (gust.c, request.c,
 * response.c, kv.c, config.c). Not part of the API: a function includes
 * gust.h only. Everything here is named gust__ so it cannot clash with a
 * function's own names.
 *
 * The small helpers are `static inline` so each source inlines them as the
 * single-file helper did (no calls across objects on the hot paths).
 */
#ifndef GUST_INTERNAL_H
#define GUST_INTERNAL_H

#include "gust.h"

#include <stdlib.h>
#include <string.h>

#include "handler.h"

/* ---- Errors (the storage is in gust.c) -------------------------------- */

#define GUST__ERROR_MAX 256
extern char gust__last_error[GUST__ERROR_MAX] __attribute__((visibility("hidden")));

/* Records `len` bytes of detail for gust_last_error() and answers `err`. */
static inline int gust__fail_n(int err, const char *detail, size_t len) {
    if (len >= GUST__ERROR_MAX) len = GUST__ERROR_MAX - 1;
    if (len) memcpy(gust__last_error, detail, len);
    gust__last_error[len] = 0;
    return err;
}

/* gust_strerror's text, inline so a constant code folds to its string. */
static inline const char *gust__strerror(int err) {
    switch (err) {
    case GUST_OK: return "ok";
    case GUST_NOT_FOUND: return "not found";
    case GUST_ERR_NO_SUCH_STORE: return "no such store";
    case GUST_ERR_ACCESS_DENIED: return "access denied";
    case GUST_ERR_HOST: return "the host failed";
    case GUST_ERR_TOO_LARGE: return "too large";
    case GUST_ERR_IO: return "stream failed";
    case GUST_ERR_INVALID: return "invalid argument";
    case GUST_ERR_STATE: return "out of order";
    case GUST_ERR_NO_MEMORY: return "out of memory";
    default: return "unknown error";
    }
}

/* Records `detail` (NULL: the code's description) and answers `err`. */
static inline int gust__fail(int err, const char *detail) {
    if (!detail) detail = gust__strerror(err);
    return gust__fail_n(err, detail, strlen(detail));
}

/* ---- Shared helpers --------------------------------------------------- */

/* A borrowed view of a C string (NULL: ""), for the bindings. */
static inline handler_string_t gust__str(const char *s) {
    handler_string_t out;
    handler_string_set(&out, s ? s : "");
    return out;
}

/* A NUL-terminated malloc'd copy of `len` bytes. */
static inline char *gust__copy_n(const void *data, size_t len) {
    char *out = malloc(len + 1);
    if (!out) return NULL;
    if (len) memcpy(out, data, len);
    out[len] = 0;
    return out;
}

/* Drops what a failed stream operation owns. */
static inline void gust__stream_error_drop(wasi_io_streams_stream_error_t *err) {
    if (err->tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED) {
        wasi_io_error_error_drop_own(err->val.last_operation_failed);
    }
}

/* ---- Request (request.c) ---------------------------------------------- */

typedef struct gust__header {
    char *name;
    char *value;
} gust__header;

struct gust_request {
    wasi_http_types_own_incoming_request_t handle;
    char *method;
    char *path;  /* without the query */
    char *query; /* "" when none */
    bool headers_read;
    gust__header *headers;
    size_t header_count;
    char *query_value; /* the last gust_req_query_param answer */
    bool body_read;
    int body_status;
    char *body;
    size_t body_len;
};

/* Frees what the request view holds and drops the request. */
void gust__request_free(gust_request *req);

/* ---- Response (response.c) -------------------------------------------- */

struct gust_response {
    wasi_http_types_own_response_outparam_t outparam;
    int status;
    bool has_headers;
    bool has_length; /* the handler set content-length */
    wasi_http_types_own_fields_t headers;
    char *buf;
    size_t len, cap;
    bool sent;
    bool failed;
    wasi_http_types_own_outgoing_body_t body;
    wasi_http_types_own_output_stream_t stream;
};

/* Sends the response if the handler did not (with a content-length when
 * the whole body is known), flushes and finishes the body. */
void gust__response_finish(gust_response *res);

#endif /* GUST_INTERNAL_H */
