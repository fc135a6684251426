/*
 * gust.c: the helper of gust.h over the generated bindings (handler.h,
 * from `wit-bindgen c` for gust:function/handler). See gust.h.
 */
#include "gust.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "handler.h"

/* ---- Errors ----------------------------------------------------------- */

static char last_error[256];

/* Records `len` bytes of detail for gust_last_error() and answers `err`. */
static int fail_n(int err, const char *detail, size_t len) {
    if (len >= sizeof last_error) len = sizeof last_error - 1;
    if (len) memcpy(last_error, detail, len);
    last_error[len] = 0;
    return err;
}

/* Records `detail` (NULL: the code's description) and answers `err`. */
static int fail(int err, const char *detail) {
    if (!detail) detail = gust_strerror(err);
    return fail_n(err, detail, strlen(detail));
}

const char *gust_strerror(int err) {
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

const char *gust_last_error(void) { return last_error; }

static handler_string_t str(const char *s) {
    handler_string_t out;
    handler_string_set(&out, s ? s : "");
    return out;
}

/* A NUL-terminated malloc'd copy of `len` bytes. */
static char *copy_n(const void *data, size_t len) {
    char *out = malloc(len + 1);
    if (!out) return NULL;
    if (len) memcpy(out, data, len);
    out[len] = 0;
    return out;
}

/* Drops what a failed stream operation owns. */
static void stream_error_drop(wasi_io_streams_stream_error_t *err) {
    if (err->tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED) {
        wasi_io_error_error_drop_own(err->val.last_operation_failed);
    }
}

/* ---- Request ---------------------------------------------------------- */

typedef struct header {
    char *name;
    char *value;
} header;

struct gust_request {
    wasi_http_types_own_incoming_request_t handle;
    char *method;
    char *path;  /* without the query */
    char *query; /* "" when none */
    bool headers_read;
    header *headers;
    size_t header_count;
    char *query_value; /* the last gust_req_query_param answer */
    bool body_read;
    int body_status;
    char *body;
    size_t body_len;
};

static const char *const method_names[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
};

static wasi_http_types_borrow_incoming_request_t req_borrow(gust_request *req) {
    return wasi_http_types_borrow_incoming_request(req->handle);
}

const char *gust_req_method(gust_request *req) {
    if (!req->method) {
        wasi_http_types_method_t method;
        wasi_http_types_method_incoming_request_method(req_borrow(req), &method);
        if (method.tag == WASI_HTTP_TYPES_METHOD_OTHER) {
            req->method = copy_n(method.val.other.ptr, method.val.other.len);
            wasi_http_types_method_free(&method);
        } else if (method.tag < sizeof method_names / sizeof *method_names) {
            req->method = copy_n(method_names[method.tag], strlen(method_names[method.tag]));
        }
        if (!req->method) return "";
    }
    return req->method;
}

bool gust_req_is(gust_request *req, const char *method) {
    return method && strcmp(gust_req_method(req), method) == 0;
}

static void read_path(gust_request *req) {
    if (req->path) return;
    handler_string_t pq = {0};
    const char *text = "/";
    size_t len = 1;
    if (wasi_http_types_method_incoming_request_path_with_query(req_borrow(req), &pq)) {
        text = (const char *)pq.ptr;
        len = pq.len;
    }
    const char *mark = memchr(text, '?', len);
    size_t path_len = mark ? (size_t)(mark - text) : len;
    req->path = copy_n(text, path_len);
    req->query = mark ? copy_n(mark + 1, len - path_len - 1) : copy_n("", 0);
    handler_string_free(&pq);
}

const char *gust_req_path(gust_request *req) {
    read_path(req);
    return req->path ? req->path : "/";
}

const char *gust_req_query(gust_request *req) {
    read_path(req);
    return req->query ? req->query : "";
}

const char *gust_req_query_param(gust_request *req, const char *name) {
    const char *q = gust_req_query(req);
    size_t name_len = name ? strlen(name) : 0;
    if (!name_len) return NULL;
    while (*q) {
        const char *end = strchr(q, '&');
        size_t pair_len = end ? (size_t)(end - q) : strlen(q);
        const char *eq = memchr(q, '=', pair_len);
        size_t key_len = eq ? (size_t)(eq - q) : pair_len;
        if (key_len == name_len && memcmp(q, name, name_len) == 0) {
            free(req->query_value);
            req->query_value = eq ? copy_n(eq + 1, pair_len - key_len - 1) : copy_n("", 0);
            return req->query_value;
        }
        if (!end) break;
        q = end + 1;
    }
    return NULL;
}

static void read_headers(gust_request *req) {
    if (req->headers_read) return;
    req->headers_read = true;
    wasi_http_types_own_headers_t fields =
        wasi_http_types_method_incoming_request_headers(req_borrow(req));
    wasi_http_types_list_tuple2_field_name_field_value_t entries;
    wasi_http_types_method_fields_entries(wasi_http_types_borrow_fields(fields), &entries);
    wasi_http_types_fields_drop_own(fields);
    req->headers = calloc(entries.len ? entries.len : 1, sizeof(header));
    if (req->headers) {
        for (size_t i = 0; i < entries.len; i++) {
            header *h = &req->headers[req->header_count];
            h->name = copy_n(entries.ptr[i].f0.ptr, entries.ptr[i].f0.len);
            h->value = copy_n(entries.ptr[i].f1.ptr, entries.ptr[i].f1.len);
            if (!h->name || !h->value) {
                free(h->name);
                free(h->value);
                continue;
            }
            for (char *c = h->name; *c; c++) *c = (char)tolower((unsigned char)*c);
            req->header_count++;
        }
    }
    wasi_http_types_list_tuple2_field_name_field_value_free(&entries);
}

const char *gust_req_header(gust_request *req, const char *name) {
    if (!name) return NULL;
    read_headers(req);
    for (size_t i = 0; i < req->header_count; i++) {
        if (strcasecmp(req->headers[i].name, name) == 0) return req->headers[i].value;
    }
    return NULL;
}

bool gust_req_header_at(gust_request *req, size_t i, const char **name, const char **value) {
    read_headers(req);
    if (i >= req->header_count) return false;
    if (name) *name = req->headers[i].name;
    if (value) *value = req->headers[i].value;
    return true;
}

const char *gust_req_param(gust_request *req, const char *name) {
    static const char prefix[] = "x-gust-param-";
    char key[128];
    if (!name || strlen(name) >= sizeof key - sizeof prefix) return NULL;
    snprintf(key, sizeof key, "%s%s", prefix, name);
    return gust_req_header(req, key);
}

static int read_body(gust_request *req, size_t max) {
    wasi_http_types_own_incoming_body_t body;
    if (!wasi_http_types_method_incoming_request_consume(req_borrow(req), &body)) {
        return fail(GUST_ERR_STATE, "the request body was already consumed");
    }
    wasi_http_types_own_input_stream_t stream;
    if (!wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(body), &stream)) {
        wasi_http_types_future_trailers_drop_own(wasi_http_types_static_incoming_body_finish(body));
        return fail(GUST_ERR_STATE, "the request body stream was already taken");
    }
    size_t cap = 0, len = 0;
    char *buf = NULL;
    int status = GUST_OK;
    for (;;) {
        handler_list_u8_t chunk;
        wasi_io_streams_stream_error_t err;
        if (!wasi_io_streams_method_input_stream_blocking_read(
                wasi_io_streams_borrow_input_stream(stream), 65536, &chunk, &err)) {
            if (err.tag != WASI_IO_STREAMS_STREAM_ERROR_CLOSED) {
                stream_error_drop(&err);
                status = fail(GUST_ERR_IO, "reading the request body failed");
            }
            break;
        }
        if (chunk.len > max - len) {
            handler_list_u8_free(&chunk);
            status = fail(GUST_ERR_TOO_LARGE, "the request body is larger than allowed");
            break;
        }
        if (len + chunk.len + 1 > cap) {
            size_t want = cap ? cap * 2 : 4096;
            while (want < len + chunk.len + 1) want *= 2;
            char *grown = realloc(buf, want);
            if (!grown) {
                handler_list_u8_free(&chunk);
                status = fail(GUST_ERR_NO_MEMORY, NULL);
                break;
            }
            buf = grown;
            cap = want;
        }
        if (chunk.len) memcpy(buf + len, chunk.ptr, chunk.len);
        len += chunk.len;
        handler_list_u8_free(&chunk);
    }
    wasi_io_streams_input_stream_drop_own(stream);
    wasi_http_types_future_trailers_drop_own(wasi_http_types_static_incoming_body_finish(body));
    if (status != GUST_OK) {
        free(buf);
        return status;
    }
    if (!buf) buf = copy_n("", 0);
    else buf[len] = 0;
    if (!buf) return fail(GUST_ERR_NO_MEMORY, NULL);
    req->body = buf;
    req->body_len = len;
    return GUST_OK;
}

int gust_req_body(gust_request *req, size_t max, const char **data, size_t *len) {
    if (!req->body_read) {
        req->body_read = true;
        req->body_status = read_body(req, max);
    }
    if (req->body_status == GUST_OK && req->body_len > max) {
        return fail(GUST_ERR_TOO_LARGE, "the request body is larger than allowed");
    }
    if (data) *data = req->body_status == GUST_OK ? req->body : NULL;
    if (len) *len = req->body_status == GUST_OK ? req->body_len : 0;
    return req->body_status;
}

static void request_free(gust_request *req) {
    free(req->method);
    free(req->path);
    free(req->query);
    free(req->query_value);
    for (size_t i = 0; i < req->header_count; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->headers);
    free(req->body);
    wasi_http_types_incoming_request_drop_own(req->handle);
}

/* ---- Response --------------------------------------------------------- */

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

int gust_res_status(gust_response *res, int status) {
    if (res->sent) return fail(GUST_ERR_STATE, "the response was already sent");
    if (status < 100 || status > 999) return fail(GUST_ERR_INVALID, "a status is 100 to 999");
    res->status = status;
    return GUST_OK;
}

static int header_error(wasi_http_types_header_error_t *err) {
    switch (err->tag) {
    case WASI_HTTP_TYPES_HEADER_ERROR_FORBIDDEN:
        return fail(GUST_ERR_INVALID, "a forbidden header");
    case WASI_HTTP_TYPES_HEADER_ERROR_IMMUTABLE:
        return fail(GUST_ERR_STATE, "the headers are immutable");
    default:
        return fail(GUST_ERR_INVALID, "an invalid header name or value");
    }
}

static int put_header(gust_response *res, const char *name, const char *value, bool append) {
    if (res->sent) return fail(GUST_ERR_STATE, "the response was already sent");
    if (!name || !value) return fail(GUST_ERR_INVALID, NULL);
    if (!res->has_headers) {
        res->headers = wasi_http_types_constructor_fields();
        res->has_headers = true;
    }
    if (strcasecmp(name, "content-length") == 0) res->has_length = true;
    wasi_http_types_field_name_t key = str(name);
    wasi_http_types_field_value_t val = {(uint8_t *)value, strlen(value)};
    wasi_http_types_header_error_t err;
    bool ok;
    if (append) {
        ok = wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(res->headers), &key, &val, &err);
    } else {
        wasi_http_types_list_field_value_t values = {&val, 1};
        ok = wasi_http_types_method_fields_set(wasi_http_types_borrow_fields(res->headers), &key, &values, &err);
    }
    return ok ? GUST_OK : header_error(&err);
}

int gust_res_set_header(gust_response *res, const char *name, const char *value) {
    return put_header(res, name, value, false);
}

int gust_res_add_header(gust_response *res, const char *name, const char *value) {
    return put_header(res, name, value, true);
}

/* Writes all of `data` to the response stream, waiting for room. */
static int stream_write(gust_response *res, const uint8_t *data, size_t len) {
    if (res->failed) return fail(GUST_ERR_IO, "the response stream failed");
    wasi_io_streams_borrow_output_stream_t out = wasi_io_streams_borrow_output_stream(res->stream);
    while (len) {
        uint64_t room = 0;
        wasi_io_streams_stream_error_t err;
        if (!wasi_io_streams_method_output_stream_check_write(out, &room, &err)) {
            stream_error_drop(&err);
            res->failed = true;
            return fail(GUST_ERR_IO, "the response stream failed (client gone?)");
        }
        if (room == 0) {
            wasi_io_poll_own_pollable_t ready = wasi_io_streams_method_output_stream_subscribe(out);
            wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
            wasi_io_poll_pollable_drop_own(ready);
            continue;
        }
        size_t n = len < room ? len : (size_t)room;
        handler_list_u8_t chunk = {(uint8_t *)data, n};
        if (!wasi_io_streams_method_output_stream_write(out, &chunk, &err)) {
            stream_error_drop(&err);
            res->failed = true;
            return fail(GUST_ERR_IO, "the response stream failed (client gone?)");
        }
        data += n;
        len -= n;
    }
    return GUST_OK;
}

int gust_res_write(gust_response *res, const void *data, size_t len) {
    if (len && !data) return fail(GUST_ERR_INVALID, NULL);
    if (res->sent) return stream_write(res, data, len);
    if (res->len + len > res->cap) {
        size_t want = res->cap ? res->cap * 2 : 1024;
        while (want < res->len + len) want *= 2;
        char *grown = realloc(res->buf, want);
        if (!grown) return fail(GUST_ERR_NO_MEMORY, NULL);
        res->buf = grown;
        res->cap = want;
    }
    if (len) memcpy(res->buf + res->len, data, len);
    res->len += len;
    return GUST_OK;
}

int gust_res_print(gust_response *res, const char *text) {
    return gust_res_write(res, text, text ? strlen(text) : 0);
}

int gust_res_vprintf(gust_response *res, const char *fmt, va_list args) {
    char small[512];
    va_list again;
    va_copy(again, args);
    int n = vsnprintf(small, sizeof small, fmt, args);
    if (n < 0) {
        va_end(again);
        return fail(GUST_ERR_INVALID, "a bad format");
    }
    if ((size_t)n < sizeof small) {
        va_end(again);
        return gust_res_write(res, small, (size_t)n);
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        va_end(again);
        return fail(GUST_ERR_NO_MEMORY, NULL);
    }
    vsnprintf(big, (size_t)n + 1, fmt, again);
    va_end(again);
    int status = gust_res_write(res, big, (size_t)n);
    free(big);
    return status;
}

int gust_res_printf(gust_response *res, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int status = gust_res_vprintf(res, fmt, args);
    va_end(args);
    return status;
}

int gust_res_respond(gust_response *res, int status, const char *content_type, const char *body) {
    int err = gust_res_status(res, status);
    if (err) return err;
    if (content_type && (err = gust_res_set_header(res, "content-type", content_type))) return err;
    res->len = 0;
    return gust_res_print(res, body);
}

int gust_res_send(gust_response *res) {
    if (res->sent) return GUST_OK;
    res->sent = true;
    if (!res->has_headers) {
        res->headers = wasi_http_types_constructor_fields();
        res->has_headers = true;
    }
    wasi_http_types_own_outgoing_response_t response =
        wasi_http_types_constructor_outgoing_response(res->headers);
    res->has_headers = false; /* consumed */
    wasi_http_types_borrow_outgoing_response_t borrowed =
        wasi_http_types_borrow_outgoing_response(response);
    wasi_http_types_method_outgoing_response_set_status_code(borrowed, (uint16_t)res->status);
    bool have_body = wasi_http_types_method_outgoing_response_body(borrowed, &res->body);
    wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false};
    result.val.ok = response;
    wasi_http_types_static_response_outparam_set(res->outparam, &result);
    if (!have_body ||
        !wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(res->body), &res->stream)) {
        res->failed = true;
        free(res->buf);
        res->buf = NULL;
        return fail(GUST_ERR_IO, "the response body could not be opened");
    }
    int status = stream_write(res, (const uint8_t *)res->buf, res->len);
    free(res->buf);
    res->buf = NULL;
    res->len = res->cap = 0;
    return status;
}

static void response_finish(gust_response *res) {
    if (!res->sent) {
        /* The whole body is known: say how long it is (unless the handler did). */
        if (!res->has_length) {
            char digits[24], *p = digits + sizeof digits;
            size_t n = res->len;
            *--p = 0;
            do *--p = (char)('0' + n % 10); while ((n /= 10));
            put_header(res, "content-length", p, false);
        }
    }
    gust_res_send(res);
    if (res->failed && !res->stream.__handle && !res->body.__handle) return;
    if (!res->failed) {
        wasi_io_streams_stream_error_t err;
        if (!wasi_io_streams_method_output_stream_blocking_flush(
                wasi_io_streams_borrow_output_stream(res->stream), &err)) {
            stream_error_drop(&err);
            res->failed = true;
        }
    }
    if (res->stream.__handle) wasi_io_streams_output_stream_drop_own(res->stream);
    if (res->body.__handle) {
        wasi_http_types_error_code_t err;
        if (!wasi_http_types_static_outgoing_body_finish(res->body, NULL, &err)) {
            wasi_http_types_error_code_free(&err);
        }
    }
}

/* ---- The export ------------------------------------------------------- */

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
    gust_request req = {.handle = request};
    gust_response res = {.outparam = response_out, .status = 200};
    last_error[0] = 0;
    gust_handle(&req, &res);
    response_finish(&res);
    free(res.buf);
    request_free(&req);
}

/* ---- Key-value -------------------------------------------------------- */

struct gust_kv {
    wasi_keyvalue_0_2_0_draft2_store_own_bucket_t bucket;
};

static int kv_error(wasi_keyvalue_0_2_0_draft2_store_error_t *err) {
    int status;
    switch (err->tag) {
    case WASI_KEYVALUE_0_2_0_DRAFT2_STORE_ERROR_NO_SUCH_STORE:
        status = fail(GUST_ERR_NO_SUCH_STORE, NULL);
        break;
    case WASI_KEYVALUE_0_2_0_DRAFT2_STORE_ERROR_ACCESS_DENIED:
        status = fail(GUST_ERR_ACCESS_DENIED, NULL);
        break;
    default:
        status = fail_n(GUST_ERR_HOST, (const char *)err->val.other.ptr, err->val.other.len);
        break;
    }
    wasi_keyvalue_0_2_0_draft2_store_error_free(err);
    return status;
}

static wasi_keyvalue_0_2_0_draft2_store_borrow_bucket_t kv_borrow(gust_kv *kv) {
    return wasi_keyvalue_0_2_0_draft2_store_borrow_bucket(kv->bucket);
}

int gust_kv_open(const char *name, gust_kv **kv) {
    if (!kv) return fail(GUST_ERR_INVALID, NULL);
    *kv = NULL;
    handler_string_t id = str(name);
    wasi_keyvalue_0_2_0_draft2_store_own_bucket_t bucket;
    wasi_keyvalue_0_2_0_draft2_store_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_store_open(&id, &bucket, &err)) return kv_error(&err);
    gust_kv *out = malloc(sizeof *out);
    if (!out) {
        wasi_keyvalue_0_2_0_draft2_store_bucket_drop_own(bucket);
        return fail(GUST_ERR_NO_MEMORY, NULL);
    }
    out->bucket = bucket;
    *kv = out;
    return GUST_OK;
}

void gust_kv_close(gust_kv *kv) {
    if (!kv) return;
    wasi_keyvalue_0_2_0_draft2_store_bucket_drop_own(kv->bucket);
    free(kv);
}

int gust_kv_get(gust_kv *kv, const char *key, char **data, size_t *len) {
    if (!kv || !key || !data) return fail(GUST_ERR_INVALID, NULL);
    *data = NULL;
    if (len) *len = 0;
    handler_string_t k = str(key);
    handler_option_list_u8_t value;
    wasi_keyvalue_0_2_0_draft2_store_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_store_method_bucket_get(kv_borrow(kv), &k, &value, &err)) {
        return kv_error(&err);
    }
    if (!value.is_some) return GUST_NOT_FOUND;
    *data = copy_n(value.val.ptr, value.val.len);
    if (len) *len = value.val.len;
    handler_option_list_u8_free(&value);
    return *data ? GUST_OK : fail(GUST_ERR_NO_MEMORY, NULL);
}

int gust_kv_set(gust_kv *kv, const char *key, const void *data, size_t len) {
    if (!kv || !key || (len && !data)) return fail(GUST_ERR_INVALID, NULL);
    handler_string_t k = str(key);
    handler_list_u8_t value = {(uint8_t *)data, len};
    wasi_keyvalue_0_2_0_draft2_store_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_store_method_bucket_set(kv_borrow(kv), &k, &value, &err)) {
        return kv_error(&err);
    }
    return GUST_OK;
}

int gust_kv_set_str(gust_kv *kv, const char *key, const char *value) {
    return gust_kv_set(kv, key, value, value ? strlen(value) : 0);
}

int gust_kv_delete(gust_kv *kv, const char *key) {
    if (!kv || !key) return fail(GUST_ERR_INVALID, NULL);
    handler_string_t k = str(key);
    wasi_keyvalue_0_2_0_draft2_store_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_store_method_bucket_delete(kv_borrow(kv), &k, &err)) {
        return kv_error(&err);
    }
    return GUST_OK;
}

int gust_kv_exists(gust_kv *kv, const char *key, bool *exists) {
    if (!kv || !key || !exists) return fail(GUST_ERR_INVALID, NULL);
    handler_string_t k = str(key);
    wasi_keyvalue_0_2_0_draft2_store_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_store_method_bucket_exists(kv_borrow(kv), &k, exists, &err)) {
        return kv_error(&err);
    }
    return GUST_OK;
}

int gust_kv_increment(gust_kv *kv, const char *key, int64_t delta, int64_t *value) {
    if (!kv || !key) return fail(GUST_ERR_INVALID, NULL);
    handler_string_t k = str(key);
    int64_t result = 0;
    wasi_keyvalue_0_2_0_draft2_atomics_error_t err;
    if (!wasi_keyvalue_0_2_0_draft2_atomics_increment(kv_borrow(kv), &k, delta, &result, &err)) {
        return kv_error(&err);
    }
    if (value) *value = result;
    return GUST_OK;
}

/* ---- Config ----------------------------------------------------------- */

int gust_config_get(const char *key, char **value) {
    if (!key || !value) return fail(GUST_ERR_INVALID, NULL);
    *value = NULL;
    handler_string_t k = str(key);
    handler_option_string_t got;
    wasi_config_0_2_0_rc_1_store_error_t err;
    if (!wasi_config_0_2_0_rc_1_store_get(&k, &got, &err)) {
        /* upstream and io both carry a message */
        int status = fail_n(GUST_ERR_HOST, (const char *)err.val.upstream.ptr, err.val.upstream.len);
        wasi_config_0_2_0_rc_1_store_error_free(&err);
        return status;
    }
    if (!got.is_some) return GUST_NOT_FOUND;
    *value = copy_n(got.val.ptr, got.val.len);
    handler_option_string_free(&got);
    return *value ? GUST_OK : fail(GUST_ERR_NO_MEMORY, NULL);
}

typedef struct config_entry {
    struct config_entry *next;
    char *key;
    char *value; /* NULL: not set */
} config_entry;

static config_entry *config_cache;

const char *gust_config(const char *key, const char *fallback) {
    if (!key) return fallback;
    for (config_entry *e = config_cache; e; e = e->next) {
        if (strcmp(e->key, key) == 0) return e->value ? e->value : fallback;
    }
    char *value = NULL;
    int status = gust_config_get(key, &value);
    if (status != GUST_OK && status != GUST_NOT_FOUND) return fallback; /* not cached: retried */
    config_entry *e = malloc(sizeof *e);
    char *k = copy_n(key, strlen(key));
    if (!e || !k) {
        free(e);
        free(k);
        free(value);
        return fallback;
    }
    e->key = k;
    e->value = value;
    e->next = config_cache;
    config_cache = e;
    return value ? value : fallback;
}

/* ---- Logging ---------------------------------------------------------- */

void gust_log(gust_level level, const char *fmt, ...) {
    char small[512];
    char *text = small;
    va_list args, again;
    va_start(args, fmt);
    va_copy(again, args);
    int n = vsnprintf(small, sizeof small, fmt, args);
    va_end(args);
    if (n < 0) {
        va_end(again);
        return;
    }
    if ((size_t)n >= sizeof small) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            text = big;
        } else {
            n = sizeof small - 1;
        }
    }
    va_end(again);
    handler_string_t context = {(uint8_t *)"", 0};
    handler_string_t message = {(uint8_t *)text, (size_t)n};
    if ((unsigned)level > GUST_CRITICAL) level = GUST_CRITICAL;
    wasi_logging_logging_log((wasi_logging_logging_level_t)level, &context, &message);
    if (text != small) free(text);
}
