/*
 * gust.h: write gust functions in C.
 *
 * A thin helper over the bindings `wit-bindgen c` generates for gust's
 * world `gust:function/handler` (wasi:http/proxy plus key-value, config
 * and logging). A function defines one handler:
 *
 *     #include "gust.h"
 *
 *     void gust_handle(gust_request *req, gust_response *res) {
 *         const char *name = gust_req_param(req, "name");
 *         gust_res_set_header(res, "content-type", "text/plain; charset=utf-8");
 *         gust_res_printf(res, "Hello, %s!\n", name ? name : "world");
 *     }
 *
 * and is built with `build.sh` beside this file (see README.md). The
 * response is buffered and sent when `gust_handle` returns (status 200
 * unless set); `gust_res_send` sends the status and headers earlier, after
 * which writes stream straight to the client.
 *
 * Functions returning `int` answer GUST_OK (0) or a `gust_err`;
 * `gust_last_error()` has the host's detail of the last error. Nothing
 * here traps on a host error (a store that is not granted, a client gone):
 * it is an error value for the handler to answer as it sees fit.
 *
 * Strings handed out by the request view belong to the request and live
 * until `gust_handle` returns. Values from `gust_kv_get` and
 * `gust_config_get` are the caller's to `free()`.
 *
 * The generated bindings (`handler.h`) stay available for everything this
 * header does not cover (outbound HTTP, blob storage, ...).
 */
#ifndef GUST_H
#define GUST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Results ---------------------------------------------------------- */

typedef enum gust_err {
    GUST_OK = 0,
    GUST_NOT_FOUND = 1,          /* no such key / config value (not a failure) */
    GUST_ERR_NO_SUCH_STORE = 2,  /* the store does not exist */
    GUST_ERR_ACCESS_DENIED = 3,  /* the manifest does not grant it */
    GUST_ERR_HOST = 4,           /* the host failed; detail in gust_last_error() */
    GUST_ERR_TOO_LARGE = 5,      /* a request body past the caller's bound */
    GUST_ERR_IO = 6,             /* a stream failed (e.g. the client left) */
    GUST_ERR_INVALID = 7,        /* a bad argument (header name or value, NULL, ...) */
    GUST_ERR_STATE = 8,          /* out of order (a header after gust_res_send) */
    GUST_ERR_NO_MEMORY = 9,
} gust_err;

/* A fixed description of an error code. */
const char *gust_strerror(int err);
/* The detail of the last error (the host's message when there is one). */
const char *gust_last_error(void);

/* ---- The handler ------------------------------------------------------ */

typedef struct gust_request gust_request;
typedef struct gust_response gust_response;

/* Defined by the function: called once per request. */
void gust_handle(gust_request *req, gust_response *res);

/* ---- Request view ----------------------------------------------------- */

/* "GET", "POST", ... (other methods as sent). */
const char *gust_req_method(gust_request *req);
/* True when the method is `method` ("GET", "POST", ...). */
bool gust_req_is(gust_request *req, const char *method);
/* The path without the query: "/hello/world". */
const char *gust_req_path(gust_request *req);
/* The query without '?': "a=1&b=2", or "" when there is none. */
const char *gust_req_query(gust_request *req);
/* The raw value of query parameter `name` (not percent-decoded), "" for a
 * bare `name`, or NULL when absent. */
const char *gust_req_query_param(gust_request *req, const char *name);
/* The first value of header `name` (any case), or NULL. */
const char *gust_req_header(gust_request *req, const char *name);
/* Every header, in order: returns false past the last. Names are lowercase. */
bool gust_req_header_at(gust_request *req, size_t i, const char **name, const char **value);
/* The route parameter `name` (`{name}` / `{*name}` in the route), as it
 * appears in the path (not percent-decoded), or NULL: gust passes them as
 * `x-gust-param-NAME` headers. */
const char *gust_req_param(gust_request *req, const char *name);
/* Reads the whole body, at most `max` bytes (GUST_ERR_TOO_LARGE past it).
 * `*data` is NUL-terminated (the NUL not counted in `*len`) and belongs to
 * the request; a second call answers the same bytes. Either out pointer may
 * be NULL. */
int gust_req_body(gust_request *req, size_t max, const char **data, size_t *len);

/* ---- Response builder ------------------------------------------------- */

/* The status (default 200). Before gust_res_send. */
int gust_res_status(gust_response *res, int status);
/* Sets (replaces) a header. Before gust_res_send. */
int gust_res_set_header(gust_response *res, const char *name, const char *value);
/* Adds a header value (e.g. one more set-cookie). Before gust_res_send. */
int gust_res_add_header(gust_response *res, const char *name, const char *value);
/* Appends body bytes (buffered until sent; streamed after gust_res_send). */
int gust_res_write(gust_response *res, const void *data, size_t len);
/* Appends a NUL-terminated string. */
int gust_res_print(gust_response *res, const char *text);
/* Appends formatted text. */
int gust_res_printf(gust_response *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int gust_res_vprintf(gust_response *res, const char *fmt, va_list args);
/* A whole answer in one call: status, content-type, body (replaces what
 * was buffered). Before gust_res_send. */
int gust_res_respond(gust_response *res, int status, const char *content_type, const char *body);
/* Sends the status, headers and what is buffered now; later writes stream.
 * Called automatically when gust_handle returns. */
int gust_res_send(gust_response *res);

/* ---- Key-value (wasi:keyvalue@0.2.0-draft2) --------------------------- */

/* A store the manifest grants: `key_value_stores = ["default"]`. */
typedef struct gust_kv gust_kv;

/* Opens store `name` ("default"): GUST_ERR_ACCESS_DENIED when not granted. */
int gust_kv_open(const char *name, gust_kv **kv);
void gust_kv_close(gust_kv *kv);
/* GUST_OK with a malloc'd copy in *data (NUL-terminated past *len; free()
 * it), GUST_NOT_FOUND when the key is absent, or an error. `len` may be NULL. */
int gust_kv_get(gust_kv *kv, const char *key, char **data, size_t *len);
int gust_kv_set(gust_kv *kv, const char *key, const void *data, size_t len);
int gust_kv_set_str(gust_kv *kv, const char *key, const char *value);
/* Deleting an absent key is not an error. */
int gust_kv_delete(gust_kv *kv, const char *key);
int gust_kv_exists(gust_kv *kv, const char *key, bool *exists);
/* Atomically adds `delta` (an absent key counts from 0); `*value` (may be
 * NULL) is the new value. */
int gust_kv_increment(gust_kv *kv, const char *key, int64_t delta, int64_t *value);

/* ---- Config (wasi:config@0.2.0-rc.1) ---------------------------------- */

/* The function's `config` value `key`: GUST_OK with a malloc'd string in
 * *value (free() it), GUST_NOT_FOUND when it is not set, or an error. */
int gust_config_get(const char *key, char **value);
/* The value of `key`, or `fallback` when it is not set or cannot be read.
 * Values are kept for the life of the instance: do not free them. */
const char *gust_config(const char *key, const char *fallback);

/* ---- Logging (wasi:logging) ------------------------------------------- */

typedef enum gust_level {
    GUST_TRACE = 0,
    GUST_DEBUG = 1,
    GUST_INFO = 2,
    GUST_WARN = 3,
    GUST_ERROR = 4,
    GUST_CRITICAL = 5,
} gust_level;

/* One line in the invocation's log, which gust logs with the app,
 * function and request id: `INFO message`. */
void gust_log(gust_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif /* GUST_H */
