/*
 * request.c: the request view of gust.h (method, path, query, headers,
 * route parameters, body), read from the incoming request on demand.
 */
#include "gust_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <strings.h>

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
            req->method = gust__copy_n(method.val.other.ptr, method.val.other.len);
            wasi_http_types_method_free(&method);
        } else if (method.tag < sizeof method_names / sizeof *method_names) {
            req->method = gust__copy_n(method_names[method.tag], strlen(method_names[method.tag]));
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
    req->path = gust__copy_n(text, path_len);
    req->query = mark ? gust__copy_n(mark + 1, len - path_len - 1) : gust__copy_n("", 0);
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
            req->query_value = eq ? gust__copy_n(eq + 1, pair_len - key_len - 1) : gust__copy_n("", 0);
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
    req->headers = calloc(entries.len ? entries.len : 1, sizeof(gust__header));
    if (req->headers) {
        for (size_t i = 0; i < entries.len; i++) {
            gust__header *h = &req->headers[req->header_count];
            h->name = gust__copy_n(entries.ptr[i].f0.ptr, entries.ptr[i].f0.len);
            h->value = gust__copy_n(entries.ptr[i].f1.ptr, entries.ptr[i].f1.len);
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
        return gust__fail(GUST_ERR_STATE, "the request body was already consumed");
    }
    wasi_http_types_own_input_stream_t stream;
    if (!wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(body), &stream)) {
        wasi_http_types_future_trailers_drop_own(wasi_http_types_static_incoming_body_finish(body));
        return gust__fail(GUST_ERR_STATE, "the request body stream was already taken");
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
                gust__stream_error_drop(&err);
                status = gust__fail(GUST_ERR_IO, "reading the request body failed");
            }
            break;
        }
        if (chunk.len > max - len) {
            handler_list_u8_free(&chunk);
            status = gust__fail(GUST_ERR_TOO_LARGE, "the request body is larger than allowed");
            break;
        }
        if (len + chunk.len + 1 > cap) {
            size_t want = cap ? cap * 2 : 4096;
            while (want < len + chunk.len + 1) want *= 2;
            char *grown = realloc(buf, want);
            if (!grown) {
                handler_list_u8_free(&chunk);
                status = gust__fail(GUST_ERR_NO_MEMORY, NULL);
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
    if (!buf) buf = gust__copy_n("", 0);
    else buf[len] = 0;
    if (!buf) return gust__fail(GUST_ERR_NO_MEMORY, NULL);
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
        return gust__fail(GUST_ERR_TOO_LARGE, "the request body is larger than allowed");
    }
    if (data) *data = req->body_status == GUST_OK ? req->body : NULL;
    if (len) *len = req->body_status == GUST_OK ? req->body_len : 0;
    return req->body_status;
}

void gust__request_free(gust_request *req) {
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
